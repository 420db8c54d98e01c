package decode

// Finding the event that decodes a log among several definitions.

import (
	"fmt"

	"github.com/ethhook/ethhook/hook"
)

// Set finds the event definition for a log among several, by topic0 and,
// where two events share a topic0 (ERC-20 and ERC-721 Transfer), by the
// number of topics.
type Set struct {
	byTopic map[string][]*Event
}

// NewSet indexes events; later duplicates of a (topic0, topic count) are ignored.
func NewSet(events ...*Event) *Set {
	s := &Set{byTopic: map[string][]*Event{}}
	s.Add(events...)
	return s
}

// Add indexes more events.
func (s *Set) Add(events ...*Event) {
	for _, e := range events {
		dup := false
		for _, o := range s.byTopic[e.Topic0] {
			if o == e || o.Topics() == e.Topics() {
				dup = true
				break
			}
		}
		if !dup {
			s.byTopic[e.Topic0] = append(s.byTopic[e.Topic0], e)
		}
	}
}

// Events returns every event with that topic0.
func (s *Set) Events(topic0 string) []*Event { return s.byTopic[topic0] }

// All lists every event of the set.
func (s *Set) All() []*Event {
	var out []*Event
	for _, es := range s.byTopic {
		out = append(out, es...)
	}
	return out
}

// Lookup returns the event that fits the log's topic0 and topic count, or nil.
func (s *Set) Lookup(topics []string) *Event {
	if s == nil || len(topics) == 0 {
		return nil
	}
	var positional *Event
	for _, e := range s.byTopic[topics[0]] {
		if e.Topics() == len(topics) {
			return e
		}
		if e.Positional {
			positional = e
		}
	}
	return positional
}

// Decode decodes a log with the fitting event of the set.
func (s *Set) Decode(l *hook.Log) (*Event, *Decoded, error) {
	e := s.Lookup(l.Topics)
	if e == nil {
		t0 := "none"
		if len(l.Topics) > 0 {
			t0 = l.Topics[0]
		}
		return nil, nil, fmt.Errorf("%w: no known event has topic0 %s with %d topics", ErrUnknownEvent, t0, len(l.Topics))
	}
	d, err := e.Decode(l)
	return e, d, err
}
