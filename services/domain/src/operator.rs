//! Operators of the bureau and what each role may do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including managing operators.
    Admin,
    /// Imports subjects, defines tags, policies and campaigns, launches campaigns.
    Editor,
    /// Publishes policies and approves campaigns created by someone else.
    Reviewer,
    /// Reads.
    Viewer,
}

/// What an API call wants to do; [`Role::may`] says whether a role can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    /// Read personal data (ID numbers, phones, openids) unmasked.
    ReadPersonal,
    WriteSubjects,
    WriteCatalogue,
    Publish,
    Approve,
    Launch,
    ManageOperators,
    /// Declare attributes in the catalogue (labels, types, value labels): admins only.
    WriteAttributes,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Reviewer => "reviewer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Role::Admin, Role::Editor, Role::Reviewer, Role::Viewer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Editor => matches!(
                action,
                Read | ReadPersonal | WriteSubjects | WriteCatalogue | Launch
            ),
            Role::Reviewer => matches!(action, Read | Publish | Approve),
            Role::Viewer => matches!(action, Read),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions() {
        assert!(Role::Admin.may(Action::ManageOperators));
        assert!(!Role::Editor.may(Action::Approve));
        assert!(Role::Editor.may(Action::Launch));
        assert!(Role::Reviewer.may(Action::Approve));
        assert!(!Role::Reviewer.may(Action::Launch));
        assert!(!Role::Viewer.may(Action::Launch));
        assert!(!Role::Viewer.may(Action::ReadPersonal));
        assert_eq!(Role::parse("reviewer"), Some(Role::Reviewer));
        assert_eq!(Role::parse("root"), None);
    }
}
