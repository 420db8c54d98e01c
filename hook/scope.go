package hook

// Scope is who is asking. Every service-layer query is filtered by it, so one
// tenant can never see or change another's data:
//   - Admin: an admin user or the operator's CLI: every application;
//   - UserID: a member: the applications listed for them in application_members;
//   - AppID: an application API key: that one application only.
type Scope struct {
	Admin  bool
	UserID string
	AppID  string
}

// Operator is the scope of the command line on the server itself.
var Operator = Scope{Admin: true}
