//! Who may do what, in one place for the API and the console: three roles, ordered, and the one
//! table of routes that need more than the default (a read needs a viewer, a change an
//! operator). The API's `Caller` and the console's `Viewer` check it as they are extracted, so a
//! handler never runs for someone its route does not allow.

use axum::http::Method;

/// A console account's or an API key's role. Ordered: each can do what the one before can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads everything (in scope), changes nothing; may ask for a plan or a preview.
    Viewer,
    /// Deploys, syncs, manages users, devices, collections, invitations and the ledger.
    Operator,
    /// Everything: tokens, console accounts, API keys, alert endpoints, the audit log.
    Admin,
}

impl Role {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// A role as stored or given; `read_only` is the name `viewer` had before operators existed.
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" | "read_only" | "read-only" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// A role a request names, or the error that says which exist.
    pub fn from_request(s: Option<&str>) -> Result<Role, String> {
        match s {
            None => Ok(Role::Viewer),
            Some(v) => Role::parse(v)
                .ok_or_else(|| format!("role {v:?} must be admin, operator or viewer")),
        }
    }

    /// What this role may do, in words (messages, the console's account page).
    pub fn describe(self) -> &'static str {
        match self {
            Role::Viewer => "looks at everything and changes nothing",
            Role::Operator => {
                "deploys, syncs and manages people, devices, collections and the ledger; not tokens, accounts, keys or alerts"
            }
            Role::Admin => "does everything",
        }
    }

    /// A stored role; an unknown value (never written by Allot) reads as the least one.
    pub fn stored(s: &str) -> Role {
        Role::parse(s).unwrap_or(Role::Viewer)
    }
}

use Role::{Admin, Viewer};

/// Routes that need another role than their method's default. Route patterns as the router
/// declares them.
const RULES: &[(&str, &str, Role)] = &[
    // API: locations, access and alert settings are for admins.
    ("POST", "/api/v1/tokens", Admin),
    ("DELETE", "/api/v1/tokens/{token}", Admin),
    ("PUT", "/api/v1/tokens/{token}/file", Admin),
    ("POST", "/api/v1/tokens/{token}/takeover", Admin),
    ("POST", "/api/v1/tokens/{token}/subscriptions", Admin),
    ("GET", "/api/v1/console-accounts", Admin),
    ("POST", "/api/v1/console-accounts", Admin),
    ("PUT", "/api/v1/console-accounts/{id}", Admin),
    ("GET", "/api/v1/api-keys", Admin),
    ("POST", "/api/v1/api-keys", Admin),
    ("PUT", "/api/v1/api-keys/{id}", Admin),
    ("DELETE", "/api/v1/api-keys/{id}", Admin),
    ("GET", "/api/v1/webhooks", Admin),
    ("POST", "/api/v1/webhooks", Admin),
    ("GET", "/api/v1/webhooks/{id}", Admin),
    ("DELETE", "/api/v1/webhooks/{id}", Admin),
    ("GET", "/api/v1/webhooks/{id}/deliveries", Admin),
    ("POST", "/api/v1/webhooks/{id}/test", Admin),
    ("GET", "/api/v1/audit", Admin),
    ("PUT", "/api/v1/apps/{adam_id}/alert-threshold", Admin),
    // API: forms that only read.
    ("POST", "/api/v1/deployments/plan", Viewer),
    ("POST", "/api/v1/collections/preview", Viewer),
    // Console: the same, by its own routes.
    ("POST", "/tokens", Admin),
    ("POST", "/tokens/{id}/renew", Admin),
    ("POST", "/tokens/{id}/takeover", Admin),
    ("POST", "/tokens/{id}/delete", Admin),
    ("POST", "/subscriptions/enable", Admin),
    ("GET", "/access", Admin),
    ("POST", "/access/accounts", Admin),
    ("POST", "/access/accounts/{id}", Admin),
    ("POST", "/access/keys", Admin),
    ("POST", "/access/keys/{id}", Admin),
    ("POST", "/access/keys/{id}/revoke", Admin),
    ("GET", "/audit", Admin),
    ("GET", "/audit.csv", Admin),
    ("POST", "/alerts/webhooks", Admin),
    ("GET", "/alerts/webhooks/{id}", Admin),
    ("POST", "/alerts/webhooks/{id}/test", Admin),
    ("POST", "/alerts/webhooks/{id}/delete", Admin),
    ("POST", "/apps/{token}/{adam}/threshold", Admin),
    ("POST", "/deployments/plan", Viewer),
    // The collection forms' preview step only reads; their other steps call `may_change`,
    // which refuses viewers.
    ("POST", "/collections", Viewer),
    ("POST", "/collections/{id}/rule", Viewer),
    // Every account chooses its own time zone.
    ("POST", "/account", Viewer),
];

/// The least role a request to `route` (a router pattern) with `method` needs.
pub fn required(method: &Method, route: &str) -> Role {
    RULES
        .iter()
        .find(|(m, r, _)| *r == route && *m == method.as_str())
        .map(|(_, _, role)| *role)
        .unwrap_or(if method == Method::GET || method == Method::HEAD {
            Role::Viewer
        } else {
            Role::Operator
        })
}

/// Routes for administrators of every location: accounts, keys, alert endpoints, an app's alert
/// threshold (it applies on every token) and the audit log. A scoped admin is refused them (it
/// could otherwise widen its own scope, or read what other locations' people did).
pub fn needs_every_location(route: &str) -> bool {
    route.ends_with("/threshold")
        || route.ends_with("/alert-threshold")
        || [
            "/api/v1/console-accounts",
            "/api/v1/api-keys",
            "/api/v1/webhooks",
            "/api/v1/audit",
            "/access",
            "/audit",
            "/alerts/webhooks",
        ]
        .iter()
        .any(|p| {
            route == *p
                || route.starts_with(&format!("{p}/"))
                || route.starts_with(&format!("{p}."))
        })
}

/// Every route the table names, for the test that checks it against the routers.
pub fn named_routes() -> impl Iterator<Item = (&'static str, &'static str, Role)> {
    RULES.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_read_only_is_a_viewer() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(Role::parse("read_only"), Some(Role::Viewer));
        assert_eq!(Role::parse("operator"), Some(Role::Operator));
        assert!(Role::from_request(Some("owner"))
            .unwrap_err()
            .contains("admin, operator or viewer"));
    }

    #[test]
    fn defaults_follow_the_method_and_the_table_overrides_them() {
        assert_eq!(required(&Method::GET, "/api/v1/apps"), Role::Viewer);
        assert_eq!(
            required(&Method::POST, "/api/v1/deployments"),
            Role::Operator
        );
        assert_eq!(required(&Method::POST, "/api/v1/tokens"), Role::Admin);
        assert_eq!(
            required(&Method::POST, "/api/v1/deployments/plan"),
            Role::Viewer
        );
        assert_eq!(required(&Method::GET, "/audit"), Role::Admin);
    }
}
