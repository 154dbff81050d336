//! SMART on FHIR scopes, parsed strictly.
//!
//! A scope string is what an OAuth2 client asks for and what an access token carries; a
//! lenient parser would turn a typo into either no access (confusing) or, worse, more
//! access than meant. So every scope must be one this module knows, written exactly:
//!
//! - resource scopes `context/Resource.permissions`, where `context` is `patient`, `user`
//!   or `system`, `Resource` a [`ResourceKind`] name (case-sensitive) or `*`, and
//!   `permissions` either SMART v1 (`read`, `write`, `*`) or SMART v2 (a non-empty subset of
//!   `c r u d s`, in that order, each at most once). v1 `read` means v2 `rs`, `write` means
//!   `cud`, `*` means `cruds` (SMART App Launch 2.0, "Scopes for requesting FHIR resources").
//!   v2 query qualifiers (`?category=…`) are refused, not ignored.
//! - the non-resource scopes `openid`, `fhirUser`, `profile`, `launch`, `launch/patient`,
//!   `launch/encounter`, `offline_access`, `online_access`.
//!
//! A list is separated by single spaces (RFC 6749 §3.3: `scope-token *( SP scope-token )`);
//! an empty token (two spaces, a leading or trailing space) is an error naming its position.

use std::fmt;

use thiserror::Error;

use crate::model::{Action, ResourceKind};

/// Whose data a resource scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeContext {
    /// Only the launch patient's data.
    Patient,
    /// Whatever the signed-in user may access.
    User,
    /// A backend system with no user: the scope itself is the right.
    System,
}

impl ScopeContext {
    fn code(self) -> &'static str {
        match self {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        }
    }
}

/// The resource type a scope names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeResource {
    /// `*`: every resource type.
    All,
    /// One resource type.
    Kind(ResourceKind),
}

/// A set of SMART v2 permissions (`c r u d s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

const PERMISSION_LETTERS: [(char, Action); 5] = [
    ('c', Action::Create),
    ('r', Action::Read),
    ('u', Action::Update),
    ('d', Action::Delete),
    ('s', Action::Search),
];

impl Permissions {
    fn bit(action: Action) -> u8 {
        match action {
            Action::Create => 1,
            Action::Read => 2,
            Action::Update => 4,
            Action::Delete => 8,
            Action::Search => 16,
        }
    }

    /// The permissions that allow exactly these actions.
    pub fn of(actions: &[Action]) -> Self {
        Permissions(actions.iter().fold(0, |acc, a| acc | Self::bit(*a)))
    }

    /// Whether `action` is permitted.
    pub fn allows(self, action: Action) -> bool {
        self.0 & Self::bit(action) != 0
    }

    /// Whether every permission in `other` is also in `self`.
    pub fn contains(self, other: Permissions) -> bool {
        other.0 & !self.0 == 0
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, action) in PERMISSION_LETTERS {
            if self.allows(action) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// A resource scope: context, resource type and permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    /// Patient, user or system.
    pub context: ScopeContext,
    /// The resource type or all.
    pub resource: ScopeResource,
    /// The permitted interactions.
    pub permissions: Permissions,
}

impl ResourceScope {
    /// Whether this scope permits `action` on `kind` (the context is the caller's concern).
    pub fn permits(&self, kind: ResourceKind, action: Action) -> bool {
        let kind_ok = match self.resource {
            ScopeResource::All => true,
            ScopeResource::Kind(k) => k == kind,
        };
        kind_ok && self.permissions.allows(action)
    }

    /// Whether everything `other` allows is also allowed by `self` (same context).
    pub fn covers(&self, other: &ResourceScope) -> bool {
        let resource_ok = match (self.resource, other.resource) {
            (ScopeResource::All, _) => true,
            (ScopeResource::Kind(a), ScopeResource::Kind(b)) => a == b,
            (ScopeResource::Kind(_), ScopeResource::All) => false,
        };
        self.context == other.context && resource_ok && self.permissions.contains(other.permissions)
    }
}

impl fmt::Display for ResourceScope {
    /// Always written in SMART v2 form (`system/Patient.rs`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource = match self.resource {
            ScopeResource::All => "*",
            ScopeResource::Kind(k) => k.code(),
        };
        write!(
            f,
            "{}/{}.{}",
            self.context.code(),
            resource,
            self.permissions
        )
    }
}

/// One parsed scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A resource scope.
    Resource(ResourceScope),
    /// `openid`: an OpenID Connect id token is wanted.
    OpenId,
    /// `fhirUser`: the id token names the user's FHIR resource.
    FhirUser,
    /// `profile` (OpenID Connect; SMART v1 apps use it).
    Profile,
    /// `launch`: EHR launch context.
    Launch,
    /// `launch/patient`: standalone launch needs a patient chosen.
    LaunchPatient,
    /// `launch/encounter`: standalone launch needs an encounter chosen.
    LaunchEncounter,
    /// `offline_access`: a refresh token that outlives the session.
    OfflineAccess,
    /// `online_access`: a refresh token bound to the session.
    OnlineAccess,
}

const NAMED_SCOPES: [(&str, Scope); 8] = [
    ("openid", Scope::OpenId),
    ("fhirUser", Scope::FhirUser),
    ("profile", Scope::Profile),
    ("launch", Scope::Launch),
    ("launch/patient", Scope::LaunchPatient),
    ("launch/encounter", Scope::LaunchEncounter),
    ("offline_access", Scope::OfflineAccess),
    ("online_access", Scope::OnlineAccess),
];

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Resource(r) => r.fmt(f),
            other => {
                let name = NAMED_SCOPES
                    .iter()
                    .find(|(_, s)| s == other)
                    .map(|(n, _)| *n)
                    .unwrap_or("?");
                f.write_str(name)
            }
        }
    }
}

/// What is wrong with a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeErrorKind {
    /// An empty token (doubled, leading or trailing space, or an empty string).
    Empty,
    /// Neither a known named scope nor `context/Resource.permissions`.
    NotAScope,
    /// The context before `/` is not `patient`, `user` or `system`.
    UnknownContext(String),
    /// The resource type is not one trent serves (names are case-sensitive).
    UnknownResourceType(String),
    /// Nothing after the `.`.
    NoPermissions,
    /// A character that is not one of `c r u d s` (and the text is not `read`, `write`, `*`).
    UnknownPermission(char),
    /// A permission letter repeated or out of the order `c r u d s`.
    PermissionsOutOfOrder,
    /// A SMART v2 query qualifier (`?…`), which trent does not support.
    QualifierNotSupported,
}

impl fmt::Display for ScopeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeErrorKind::Empty => write!(f, "empty scope (scopes are separated by one space)"),
            ScopeErrorKind::NotAScope => write!(
                f,
                "not a scope: expected context/Resource.permissions or one of openid, fhirUser, profile, launch, launch/patient, launch/encounter, offline_access, online_access"
            ),
            ScopeErrorKind::UnknownContext(c) => {
                write!(
                    f,
                    "unknown context {c:?} (expected patient, user or system)"
                )
            }
            ScopeErrorKind::UnknownResourceType(r) => {
                write!(f, "unknown resource type {r:?} (names are case-sensitive)")
            }
            ScopeErrorKind::NoPermissions => write!(f, "no permissions after '.'"),
            ScopeErrorKind::UnknownPermission(c) => write!(
                f,
                "unknown permission {c:?} (expected read, write, * or letters of cruds)"
            ),
            ScopeErrorKind::PermissionsOutOfOrder => {
                write!(
                    f,
                    "permissions must be letters of cruds, in that order, each once"
                )
            }
            ScopeErrorKind::QualifierNotSupported => {
                write!(f, "query qualifiers ('?…') are not supported")
            }
        }
    }
}

/// A scope that failed to parse: which one (1-based position in its list, if it came from a
/// list), its text, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("scope {}{text:?}: {kind}", position.map(|p| format!("{p} ")).unwrap_or_default())]
pub struct ScopeError {
    /// Position in the space-separated list (1-based), if parsed from a list.
    pub position: Option<usize>,
    /// The scope text.
    pub text: String,
    /// What is wrong.
    pub kind: ScopeErrorKind,
}

fn parse_permissions(text: &str) -> Result<Permissions, ScopeErrorKind> {
    use Action::*;
    match text {
        "" => return Err(ScopeErrorKind::NoPermissions),
        "read" => return Ok(Permissions::of(&[Read, Search])),
        "write" => return Ok(Permissions::of(&[Create, Update, Delete])),
        "*" => return Ok(Permissions::of(&[Create, Read, Update, Delete, Search])),
        _ => {}
    }
    let mut bits = 0u8;
    let mut last_index: Option<usize> = None;
    for c in text.chars() {
        let Some(index) = PERMISSION_LETTERS.iter().position(|(l, _)| *l == c) else {
            return Err(ScopeErrorKind::UnknownPermission(c));
        };
        if last_index.is_some_and(|last| index <= last) {
            return Err(ScopeErrorKind::PermissionsOutOfOrder);
        }
        last_index = Some(index);
        bits |= Permissions::bit(PERMISSION_LETTERS[index].1);
    }
    Ok(Permissions(bits))
}

fn parse_kind(text: &str) -> Result<Scope, ScopeErrorKind> {
    if text.is_empty() {
        return Err(ScopeErrorKind::Empty);
    }
    if let Some((_, s)) = NAMED_SCOPES.iter().find(|(n, _)| *n == text) {
        return Ok(*s);
    }
    if text.contains('?') {
        return Err(ScopeErrorKind::QualifierNotSupported);
    }
    let Some((context, rest)) = text.split_once('/') else {
        return Err(ScopeErrorKind::NotAScope);
    };
    let context = match context {
        "patient" => ScopeContext::Patient,
        "user" => ScopeContext::User,
        "system" => ScopeContext::System,
        other => return Err(ScopeErrorKind::UnknownContext(other.to_string())),
    };
    let Some((resource, permissions)) = rest.split_once('.') else {
        return Err(ScopeErrorKind::NotAScope);
    };
    let resource = match resource {
        "*" => ScopeResource::All,
        name => ScopeResource::Kind(
            ResourceKind::from_code(name)
                .ok_or_else(|| ScopeErrorKind::UnknownResourceType(name.to_string()))?,
        ),
    };
    let permissions = parse_permissions(permissions)?;
    Ok(Scope::Resource(ResourceScope {
        context,
        resource,
        permissions,
    }))
}

/// Parses one scope.
pub fn parse_scope(text: &str) -> Result<Scope, ScopeError> {
    parse_kind(text).map_err(|kind| ScopeError {
        position: None,
        text: text.to_string(),
        kind,
    })
}

/// Parses a space-separated scope list (the OAuth2 `scope` parameter). An empty string is
/// an empty list; any empty token inside is an error.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, ScopeError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(' ')
        .enumerate()
        .map(|(i, token)| {
            parse_kind(token).map_err(|kind| ScopeError {
                position: Some(i + 1),
                text: token.to_string(),
                kind,
            })
        })
        .collect()
}

/// Writes a scope list back as a space-separated string (resource scopes in v2 form).
pub fn format_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(text: &str) -> ResourceScope {
        match parse_scope(text).unwrap() {
            Scope::Resource(r) => r,
            other => panic!("not a resource scope: {other:?}"),
        }
    }

    #[test]
    fn v1_and_v2_forms_mean_the_same() {
        assert_eq!(rs("system/Patient.read"), rs("system/Patient.rs"));
        assert_eq!(rs("user/*.write"), rs("user/*.cud"));
        assert_eq!(rs("patient/*.*"), rs("patient/*.cruds"));
        assert_eq!(rs("system/Patient.read").to_string(), "system/Patient.rs");
    }

    #[test]
    fn permits_follow_letters() {
        let s = rs("system/Observation.cu");
        assert!(s.permits(ResourceKind::Observation, Action::Create));
        assert!(s.permits(ResourceKind::Observation, Action::Update));
        assert!(!s.permits(ResourceKind::Observation, Action::Read));
        assert!(!s.permits(ResourceKind::Condition, Action::Create));
        let all = rs("system/*.r");
        assert!(all.permits(ResourceKind::Condition, Action::Read));
        assert!(!all.permits(ResourceKind::Condition, Action::Search));
    }

    #[test]
    fn covers_is_a_subset_test() {
        assert!(rs("system/*.rs").covers(&rs("system/Patient.r")));
        assert!(!rs("system/Patient.rs").covers(&rs("system/*.r")));
        assert!(!rs("system/*.rs").covers(&rs("system/Patient.c")));
        assert!(!rs("user/*.rs").covers(&rs("system/Patient.r")));
    }

    #[test]
    fn named_scopes_parse_and_print() {
        let list =
            parse_scopes("openid fhirUser launch/patient patient/*.rs offline_access").unwrap();
        assert_eq!(list.len(), 5);
        assert_eq!(
            format_scopes(&list),
            "openid fhirUser launch/patient patient/*.rs offline_access"
        );
        assert_eq!(parse_scopes("").unwrap(), vec![]);
    }

    #[test]
    fn errors_name_the_scope_and_what_is_wrong() {
        let cases: [(&str, ScopeErrorKind); 11] = [
            (
                "system/patient.read",
                ScopeErrorKind::UnknownResourceType("patient".into()),
            ),
            (
                "system/Foo.read",
                ScopeErrorKind::UnknownResourceType("Foo".into()),
            ),
            (
                "admin/Patient.read",
                ScopeErrorKind::UnknownContext("admin".into()),
            ),
            ("system/Patient", ScopeErrorKind::NotAScope),
            ("Patient.read", ScopeErrorKind::NotAScope),
            ("system/Patient.", ScopeErrorKind::NoPermissions),
            ("system/Patient.rx", ScopeErrorKind::UnknownPermission('x')),
            ("system/Patient.sr", ScopeErrorKind::PermissionsOutOfOrder),
            ("system/Patient.rr", ScopeErrorKind::PermissionsOutOfOrder),
            (
                "system/Patient.Read",
                ScopeErrorKind::UnknownPermission('R'),
            ),
            (
                "system/Observation.rs?category=laboratory",
                ScopeErrorKind::QualifierNotSupported,
            ),
        ];
        for (text, kind) in cases {
            let e = parse_scope(text).unwrap_err();
            assert_eq!(e.kind, kind, "{text}");
            assert_eq!(e.text, text);
        }
        let e = parse_scopes("system/*.rs  system/Patient.c").unwrap_err();
        assert_eq!(e.position, Some(2));
        assert_eq!(e.kind, ScopeErrorKind::Empty);
        assert!(e.to_string().starts_with("scope 2 \"\""), "{e}");
        let e = parse_scopes("system/*.rs system/Patient.q").unwrap_err();
        assert_eq!(e.position, Some(2));
        assert_eq!(e.kind, ScopeErrorKind::UnknownPermission('q'));
        assert!(parse_scopes(" system/*.rs").is_err());
        assert!(parse_scopes("system/*.rs ").is_err());
        assert!(parse_scopes("openid\tsystem/*.rs").is_err());
    }
}
