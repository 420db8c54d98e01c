package endpoint

// Validation of an endpoint's settings and filter, with errors that name
// the field (hook.FieldErrors).

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/ethhook/ethhook/config"
	"github.com/ethhook/ethhook/filter"
	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/sign"
)

func (s *Service) defaultConfirmations(chains []uint64) int {
	best := 0
	for _, id := range chains {
		n := -1
		for _, c := range s.chains {
			if c.ID == id {
				n = c.Confirmations
			}
		}
		if n < 0 {
			if b, ok := config.Builtin(fmt.Sprint(id)); ok {
				n = b.Confirmations
			}
		}
		if n > best {
			best = n
		}
	}
	return best
}

// validate checks e and normalizes its filter; it returns hook.FieldErrors
// keyed by field name: url, description, confirmations, batch_max,
// batch_wait_ms, rate_limit, retry_schedule, ordering, fifo_key, headers.<Name>,
// ops_events[i], and filter parts (chains, addresses[0], topics[1][0],
// events[0], abi, where[1]).
func validate(e *hook.Endpoint) error {
	fields := map[string]string{}
	u, err := url.Parse(e.URL)
	switch {
	case e.URL == "":
		fields["url"] = "required"
	case err != nil:
		fields["url"] = "not a URL: " + err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		fields["url"] = fmt.Sprintf("must be http:// or https://, got %q", u.Scheme+"://")
	case u.Host == "":
		fields["url"] = "has no host"
	case u.User != nil:
		fields["url"] = "must not carry credentials (user:password@)"
	case len(e.URL) > 2048:
		fields["url"] = "longer than 2048 characters"
	}
	if len(e.Description) > 1000 {
		fields["description"] = "longer than 1000 characters"
	}
	if e.Confirmations < 0 || e.Confirmations > MaxConfirmations {
		fields["confirmations"] = fmt.Sprintf("must be 0..%d, got %d", MaxConfirmations, e.Confirmations)
	}
	switch {
	case e.Stage != "" && e.Stage != hook.StageSafe && e.Stage != hook.StageFinalized:
		fields["finality"] = fmt.Sprintf("must be latest, confirmations:N, safe or finalized, got %q", e.Stage)
	case e.TwoPhase && !e.Held():
		fields["two_phase"] = "needs a finality other than latest (confirmations:N, safe or finalized): the second phase is sent there"
	case e.TwoPhase && e.BatchMax > 1:
		fields["two_phase"] = fmt.Sprintf("cannot be combined with batching (batch_max %d)", e.BatchMax)
	}
	if e.BatchMax < 0 || e.BatchMax > MaxBatch {
		fields["batch_max"] = fmt.Sprintf("must be 0..%d (0 or 1 = no batching), got %d", MaxBatch, e.BatchMax)
	}
	if e.BatchWaitMS < 0 || e.BatchWaitMS > MaxBatchWaitMS {
		fields["batch_wait_ms"] = fmt.Sprintf("must be 0..%d, got %d", MaxBatchWaitMS, e.BatchWaitMS)
	} else if e.BatchMax > 1 && e.BatchWaitMS == 0 {
		fields["batch_wait_ms"] = "must be positive when batch_max > 1 (how long an event may wait for its batch)"
	}
	if e.RateLimit < 0 || e.RateLimit > MaxRateLimit {
		fields["rate_limit"] = fmt.Sprintf("must be 0..%d events/s (0 = plan default), got %d", MaxRateLimit, e.RateLimit)
	}
	if len(e.RetrySchedule) > 0 {
		for i := range e.RetrySchedule {
			e.RetrySchedule[i] = strings.TrimSpace(e.RetrySchedule[i])
		}
		if _, err := config.ParseSchedule(e.RetrySchedule); err != nil {
			fields["retry_schedule"] = err.Error()
		} else if len(e.RetrySchedule) > MaxRetries {
			fields["retry_schedule"] = fmt.Sprintf("at most %d delays, got %d", MaxRetries, len(e.RetrySchedule))
		}
	}
	if e.Ordering == "" {
		e.Ordering = hook.OrderingParallel
	}
	switch {
	case e.Ordering != hook.OrderingParallel && e.Ordering != hook.OrderingFIFO:
		fields["ordering"] = fmt.Sprintf("must be %q or %q, got %q", hook.OrderingParallel, hook.OrderingFIFO, e.Ordering)
	case e.FIFOKey == "tx_from":
		// eth_getLogs does not say who sent a transaction: knowing would
		// cost one more RPC call per transaction on the ingest path.
		fields["fifo_key"] = `"tx_from" is not available: logs do not carry the transaction's sender; use contract or topic1..topic3`
	case e.FIFOKey != "" && !slices.Contains(hook.FIFOKeys, e.FIFOKey):
		fields["fifo_key"] = fmt.Sprintf("must be one of %s (or empty), got %q", strings.Join(hook.FIFOKeys, ", "), e.FIFOKey)
	case e.FIFOKey != "" && e.Ordering != hook.OrderingFIFO:
		fields["fifo_key"] = fmt.Sprintf("only applies with ordering %q, got ordering %q", hook.OrderingFIFO, e.Ordering)
	case e.FIFOKey != "" && e.BatchMax > 1:
		fields["fifo_key"] = fmt.Sprintf("cannot be combined with batching (batch_max %d): a batch mixes keys", e.BatchMax)
	}
	if e.Signature == "" {
		e.Signature = sign.SchemeHMAC
	}
	if !slices.Contains(sign.Schemes, e.Signature) {
		fields["signature"] = fmt.Sprintf("must be %q or %q, got %q", sign.SchemeHMAC, sign.SchemeEd25519, e.Signature)
	}
	validateHeaders(e, fields)
	if len(e.OpsEvents) > 0 {
		validateOps(e, fields)
	} else {
		filter.Normalize(&e.Filter)
		validateFilter(e, fields)
	}
	if len(fields) > 0 {
		return hook.FieldErrors(fields)
	}
	return nil
}

// validateFilter checks a chain endpoint's filter.
func validateFilter(e *hook.Endpoint, fields map[string]string) {
	if _, err := filter.Compile(e.Filter); err != nil {
		var fe filter.Errors
		if errors.As(err, &fe) {
			for _, f := range fe {
				if _, dup := fields[f.Field]; !dup {
					fields[f.Field] = f.Msg
				}
			}
		} else {
			fields["filter"] = err.Error()
		}
	}
	if len(e.Filter.ABI) > 0 {
		var compact strings.Builder
		if b, err := json.Marshal(e.Filter.ABI); err == nil {
			compact.Write(b)
			e.Filter.ABI = json.RawMessage(compact.String())
		}
	}
}

// applyFinality sets e's stage and count from a finality setting; conf is
// the confirmations given beside it, which must agree.
func applyFinality(e *hook.Endpoint, finality string, conf *int) error {
	stage, n, err := hook.ParseFinality(finality)
	if err != nil {
		return hook.FieldErrors{"finality": err.Error()}
	}
	if conf != nil && *conf != n {
		return hook.FieldErrors{"confirmations": fmt.Sprintf("%d disagrees with finality %q (give one of them)", *conf, finality)}
	}
	e.Stage, e.Confirmations = stage, n
	e.Finality = hook.FormatFinality(stage, n)
	return nil
}
