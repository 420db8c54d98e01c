package hook

import "fmt"

// Job is a delivery job, the entry of the DeliverJobs stream that hands a
// pending message to deliver: `message_id <id> endpoint_id <id>`. It is an
// announcement, not the message: the messages row in Postgres is the record
// of truth (see DeliverJobs). Process, replays, the quota release, the
// operator events and deliver's own sweep all offer jobs (package
// internal/streams, Offer); deliver's intake parses them.
type Job struct {
	MessageID  string
	EndpointID string
}

// Fields returns the stream entry fields of j, in XADD order.
func (j Job) Fields() []string {
	return []string{"message_id", j.MessageID, "endpoint_id", j.EndpointID}
}

// ParseJob decodes a delivery job's stream entry fields; an entry without
// both ids is refused.
func ParseJob(fields map[string]string) (Job, error) {
	j := Job{MessageID: fields["message_id"], EndpointID: fields["endpoint_id"]}
	if j.MessageID == "" || j.EndpointID == "" {
		return Job{}, fmt.Errorf("delivery job %v: want message_id and endpoint_id", fields)
	}
	return j, nil
}
