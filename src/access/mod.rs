//! Scoped credentials: `--web.access-config.file` gives users (basic authentication) and
//! bearer tokens roles — `push`, `read`, `admin` — and may hold a pusher to some groups.
//!
//! - [`file`]: the file's format and checks;
//! - [`scope`]: push rules (globs and anchored regexes on the job and grouping labels).
//!
//! Each request is authenticated once ([`authenticate`]: a [`Principal`] or 401), then
//! allowed by the role its endpoint needs (`routes::Endpoint::required_role`) and, for a
//! push or delete, by the principal's push rules ([`Principal::may_change`]); a refusal
//! is an [`AccessDenied`] (403) before anything is proposed. Without the file, the users
//! of `--web.config.file` (or nobody) may do everything, as upstream; with it, those users
//! still may.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use model::GroupingKey;
use subtle::ConstantTimeEq;

use crate::live_file::{LiveFile, Reloadable};
use crate::web_config;

mod file;
pub mod scope;

pub use file::AccessFile;
use scope::PushScope;

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Push to and delete groups (within its push rules, if it has any).
    Push,
    /// Scrape, the JSON API's reads, the status page and its files, the cluster status.
    Read,
    /// The admin API: wipe, import, membership, checkpoints; and `/-/quit`.
    Admin,
}

impl Role {
    /// The role as the file spells it.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "push" => Some(Role::Push),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// What the role allows, as a refusal says it.
    fn doing(self) -> &'static str {
        match self {
            Role::Push => "push or delete",
            Role::Read => "read",
            Role::Admin => "use the admin API",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Push => "push",
            Role::Read => "read",
            Role::Admin => "admin",
        })
    }
}

/// What one user or token of the access file may do.
#[derive(Debug)]
pub struct Grant {
    /// How refusals name it: `user "ci"`, `token "prometheus"`.
    pub principal: String,
    pub roles: BTreeSet<Role>,
    /// `None`: every group.
    pub push: Option<PushScope>,
}

/// Who sent a request, once authenticated.
#[derive(Clone, Debug)]
pub enum Principal {
    /// Nothing asks for authentication (no `basic_auth_users`, no access file): anyone
    /// may do anything, as upstream.
    Anyone,
    /// A user of `basic_auth_users` in `--web.config.file`: may do anything, as upstream.
    WebUser,
    /// A user or token of the access file.
    Granted(Arc<Grant>),
}

/// Why an authenticated request is refused (403). Display is the body sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("{principal} may not {doing}: that needs the {role} role, and its roles are [{roles}]")]
    Role { principal: String, doing: &'static str, role: Role, roles: String },
    #[error("{principal} may not {change} group {group}: its push rules allow {rules}")]
    Group { principal: String, change: &'static str, group: String, rules: String },
}

impl Principal {
    /// Whether it has `role` (`None`: any authenticated principal may).
    pub fn may(&self, role: Option<Role>) -> Result<(), AccessDenied> {
        let (Principal::Granted(grant), Some(role)) = (self, role) else {
            return Ok(());
        };
        if grant.roles.contains(&role) {
            return Ok(());
        }
        let roles = grant.roles.iter().map(Role::to_string).collect::<Vec<_>>().join(", ");
        Err(AccessDenied::Role { principal: grant.principal.clone(), doing: role.doing(), role, roles })
    }

    /// Whether its push rules allow changing the group of `key`; `change` says how in a
    /// refusal (`push to`, `delete`).
    pub fn may_change(&self, key: &GroupingKey, change: &'static str) -> Result<(), AccessDenied> {
        let Principal::Granted(grant) = self else {
            return Ok(());
        };
        match &grant.push {
            Some(scope) if !scope.allows(key) => Err(AccessDenied::Group {
                principal: grant.principal.clone(),
                change,
                group: key.to_string(),
                rules: scope.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// `--web.access-config.file` as loaded: off (no flag), or the file's principals.
#[derive(Default)]
pub struct AccessConfig {
    file: Option<AccessFile>,
    /// The file itself (none when off).
    files: Vec<PathBuf>,
}

impl AccessConfig {
    /// No file: authentication as `--web.config.file` has it.
    pub fn off() -> Self {
        AccessConfig::default()
    }

    /// Reads and checks `path` (empty: [`AccessConfig::off`]). The error is the reason
    /// the server must not start.
    pub fn load(path: &str) -> Result<Self, String> {
        if path.is_empty() {
            return Ok(Self::off());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let file = AccessFile::parse(&text).map_err(|e| format!("{path}: {e}"))?;
        Ok(AccessConfig { file: Some(file), files: vec![PathBuf::from(path)] })
    }

    /// The file as checked (`None` when off).
    pub fn file(&self) -> Option<&AccessFile> {
        self.file.as_ref()
    }
}

/// `--web.access-config.file` as served: read again when it changes (see [`LiveFile`]).
/// A file truncated while it is rewritten lists nobody, which opens nothing.
pub type LiveAccessConfig = LiveFile<AccessConfig>;

impl Reloadable for AccessConfig {
    const FLAG: &'static str = "--web.access-config.file";

    fn load(path: &str) -> Result<Self, String> {
        AccessConfig::load(path)
    }

    fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn needs_restart(&self, _next: &Self) -> Option<&'static str> {
        None
    }
}

/// The credentials of a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

impl Credentials {
    fn of(headers: &HeaderMap) -> Credentials {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Credentials::None;
        };
        let Some((scheme, rest)) = value.split_once(' ') else {
            return Credentials::None;
        };
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Credentials::Bearer(rest.to_string());
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Credentials::None;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok();
        match decoded.and_then(|d| String::from_utf8(d).ok()).as_deref().and_then(|d| d.split_once(':')) {
            Some((user, password)) => Credentials::Basic { user: user.to_string(), password: password.to_string() },
            None => Credentials::None,
        }
    }
}

/// Who sent the request, or `None` if its credentials are missing or wrong (401).
///
/// Without the access file: anyone when `basic_auth_users` is empty, else one of those
/// users. With it: a user of the file (a name the file lists is checked against the file
/// only), a user of `basic_auth_users`, or a token of the file; nobody unauthenticated.
pub async fn authenticate(web: &web_config::Access, access: &AccessConfig, headers: &HeaderMap) -> Option<Principal> {
    let credentials = Credentials::of(headers);
    let Some(file) = access.file() else {
        if web.users().is_empty() {
            return Some(Principal::Anyone);
        }
        let Credentials::Basic { user, password } = credentials else {
            return None;
        };
        return web.users().verify(user, password).await.then_some(Principal::WebUser);
    };
    match credentials {
        Credentials::Basic { user, password } => match file.users.get(&user).cloned() {
            Some(grant) => file.passwords.verify(user, password).await.then_some(Principal::Granted(grant)),
            None => web.users().verify(user, password).await.then_some(Principal::WebUser),
        },
        Credentials::Bearer(token) => token_grant(file, &token).map(Principal::Granted),
        Credentials::None => None,
    }
}

/// The grant of the token whose SHA-256 the file lists. Every listed hash is compared,
/// each in constant time, so the time taken tells nothing about near misses.
fn token_grant(file: &AccessFile, token: &str) -> Option<Arc<Grant>> {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut found = None;
    for (sha256, grant) in &file.tokens {
        if bool::from(sha256.as_slice().ct_eq(digest.as_ref())) {
            found = Some(grant.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_authorization(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn credentials_are_read_from_the_authorization_header() {
        assert_eq!(Credentials::of(&HeaderMap::new()), Credentials::None);
        assert_eq!(
            Credentials::of(&with_authorization("Basic YWxpY2U6aHVudGVyMg==")),
            Credentials::Basic { user: "alice".into(), password: "hunter2".into() }
        );
        assert_eq!(Credentials::of(&with_authorization("bearer abc")), Credentials::Bearer("abc".into()));
        assert_eq!(Credentials::of(&with_authorization("Bearer ")), Credentials::None);
        assert_eq!(Credentials::of(&with_authorization("Basic !!")), Credentials::None);
        assert_eq!(Credentials::of(&with_authorization("Digest abc")), Credentials::None);
    }

    /// The README's example token: `test`, whose SHA-256 the file lists.
    #[tokio::test]
    async fn tokens_authenticate_by_their_sha256_and_get_their_roles() {
        let text = "tokens:\n  - name: prometheus\n    \
                    sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n    roles: [read]\n";
        let access = AccessConfig { file: Some(AccessFile::parse(text).unwrap()), files: Vec::new() };
        let web = web_config::Access::default();
        let principal = authenticate(&web, &access, &with_authorization("Bearer test")).await.unwrap();
        assert_eq!(principal.may(Some(Role::Read)), Ok(()));
        let refused = principal.may(Some(Role::Push)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "token \"prometheus\" may not push or delete: that needs the push role, and its roles are [read]"
        );
        assert_eq!(principal.may(None), Ok(()), "any principal passes the health checks");
        assert!(authenticate(&web, &access, &with_authorization("Bearer tesT")).await.is_none());
        assert!(authenticate(&web, &access, &HeaderMap::new()).await.is_none(), "with the file, nobody anonymous");
        let off = AccessConfig::off();
        assert!(matches!(authenticate(&web, &off, &HeaderMap::new()).await, Some(Principal::Anyone)));
    }

    #[test]
    fn a_scoped_pusher_is_refused_other_groups_by_name() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let text = format!(
            "users:\n  ci:\n    password: \"{hash}\"\n    roles: [push]\n    push:\n      - job: \"batch-*\"\n"
        );
        let file = AccessFile::parse(&text).unwrap();
        let ci = Principal::Granted(file.users["ci"].clone());
        let key = |job: &str| GroupingKey::new([("job".to_string(), job.to_string())].into());
        assert_eq!(ci.may_change(&key("batch-1"), "push to"), Ok(()));
        assert_eq!(
            ci.may_change(&key("b"), "push to").unwrap_err().to_string(),
            r#"user "ci" may not push to group {job="b"}: its push rules allow job "batch-*""#
        );
        assert_eq!(Principal::WebUser.may_change(&key("b"), "delete"), Ok(()));
        assert_eq!(Principal::WebUser.may(Some(Role::Admin)), Ok(()));
    }
}
