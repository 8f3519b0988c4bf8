//! Words for people. Every status identifier the API answers — a target's status, a user's VPP
//! terms status, a ledger difference — has its label here, one table used by the console, the
//! CLI's tables and the CSV exports; JSON keeps the identifiers.

/// The label of a status identifier; an identifier this table does not know is shown as it is.
pub fn label(id: &str) -> &str {
    match id {
        // Deployment targets.
        "pending" => "Pending",
        "available" => "Offered",
        "requested" => "Requested by the user",
        "waiting_for_license" => "Waiting for a license",
        "needs_user" => "Needs a user",
        "invitation_pending" => "Invitation pending",
        "license_requested" => "Asking Apple for the license",
        "license_assigned" => "Licensed",
        "install_sent" => "Install sent",
        "installing" => "Installing",
        "installed" => "Installed",
        "failed" => "Failed",
        "remove_pending" => "To be removed",
        "remove_sent" => "Removal sent",
        "release_pending" => "License to give back",
        "license_releasing" => "Giving the license back",
        "uninstalled" => "Removed",
        "license_reclaimed" => "License reclaimed",
        "no_license" => "No license held",
        "superseded" => "Superseded",
        "not_compatible" => "Not compatible",
        "left" => "Left the collection",
        "unknown" => "Unknown",
        // A user's VPP terms status.
        "invited" => "Invited",
        "accepted" => "Accepted",
        "retired" => "Retired",
        // The license ledger.
        "orphan" => "Orphan (no deployment serves it)",
        "leak" => "Leak (given up, still held)",
        "missing" => "Missing at Apple",
        // Alerts (the webhook events).
        "token.expiring" => "Token expiring",
        "token.expired" => "Token expired",
        "token.revoked" => "Token revoked",
        "token.claimed" => "Token claimed by another MDM",
        "sync.failing" => "Syncs failing",
        "sync.recovered" => "Syncs recovered",
        "licenses.low" => "Low on licenses",
        "deployment.finished" => "Deployment settled",
        "ledger.drift" => "Ledger drift",
        "mdm.failing" => "MDM connector failing",
        "test" => "Test event",
        // Webhook deliveries.
        "delivered" => "Delivered",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn every_target_status_has_words_of_its_own() {
        let statuses = [
            "pending",
            "available",
            "requested",
            "waiting_for_license",
            "needs_user",
            "invitation_pending",
            "license_requested",
            "license_assigned",
            "install_sent",
            "installing",
            "installed",
            "failed",
            "remove_pending",
            "remove_sent",
            "release_pending",
            "license_releasing",
            "uninstalled",
            "license_reclaimed",
            "no_license",
            "superseded",
            "not_compatible",
            "left",
        ];
        let mut seen = std::collections::HashSet::new();
        for s in statuses {
            let l = label(s);
            assert_ne!(l, s, "{s} has no label");
            assert!(!l.contains('_'), "{l}");
            assert!(seen.insert(l), "two statuses read {l}");
        }
        assert_eq!(label("something_new"), "something_new");
    }
}
