package hook

// Message states, kept in messages.state. A message is created `pending` by
// process (or `quota_exceeded` when its application is over its monthly
// quota), moves to `delivering` while an attempt is in flight, then ends
// `succeeded`, or `failed` awaiting a scheduled retry, or `dead` when its
// retries are exhausted or the answer was final. Every transition is a
// function of package msgstate (its doc draws the diagram).
const (
	StatePending       = "pending"
	StateDelivering    = "delivering"
	StateSucceeded     = "succeeded"
	StateFailed        = "failed"
	StateDead          = "dead"
	StateQuotaExceeded = "quota_exceeded"
)

// Delivery handoff: process inserts a messages row (state pending) in
// Postgres, which is the record of truth, and then XADDs a Job (job.go) to
// the stream DeliverJobs; deliver consumes it with a consumer group. A job
// lost between the two (a crash) is recovered because deliver also sweeps
// Postgres for pending messages that no job claimed; a duplicated job is
// harmless because deliver claims a message with a conditional state update
// before sending it.
const DeliverJobsName = "{deliver}:jobs"

// DeliverJobs is the stream key of delivery jobs.
func (k Keys) DeliverJobs() string { return k.Prefix + DeliverJobsName }

// EndpointsChangedChannel is the Redis pub/sub channel (under the prefix) on
// which the endpoint service announces that an endpoint changed, with the
// endpoint id as message, so process refreshes its in-memory index at once.
// Postgres NOTIFY on channel "ethhook_endpoints" carries the same.
func (k Keys) EndpointsChanged() string { return k.Prefix + "endpoints:changed" }
