//! The text of `--web.access-config.file` (YAML) and its checks: every mistake a clear
//! error naming the user, token or rule, so a bad file stops start-up (or, on a reload,
//! keeps the last good one) instead of granting something nobody meant.
//!
//! ```yaml
//! users:                      # basic authentication, bcrypt hashes as basic_auth_users
//!   ci:
//!     password: "$2y$10$..."
//!     roles: [push]
//!     push:                   # optional; absent: every group
//!       - job: "batch-*"
//!         labels: {shard: "*"}
//!       - job_regex: "nightly-.+"
//! tokens:                     # bearer tokens, by the SHA-256 (hex) of the token
//!   - name: prometheus
//!     sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//!     roles: [read]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Deserialize;

use super::scope::{Pattern, PushRule, PushScope};
use super::{Grant, Role};
use crate::passwords::BcryptUsers;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    users: BTreeMap<String, UserFile>,
    #[serde(default)]
    tokens: Vec<TokenFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    password: String,
    roles: Vec<String>,
    #[serde(default)]
    push: Option<Vec<RuleFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    name: String,
    sha256: String,
    roles: Vec<String>,
    #[serde(default)]
    push: Option<Vec<RuleFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    job: Option<String>,
    #[serde(default)]
    job_regex: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    labels_regex: BTreeMap<String, String>,
}

/// The file as checked: who authenticates how, and what each may do.
pub struct AccessFile {
    /// The users' password hashes (bcrypt).
    pub passwords: Arc<BcryptUsers>,
    /// Each user's grant, by name.
    pub users: BTreeMap<String, Arc<Grant>>,
    /// The tokens: the SHA-256 of the token and the grant.
    pub tokens: Vec<([u8; 32], Arc<Grant>)>,
}

impl AccessFile {
    /// Checks the file's text (empty: nobody, so every request of the access file's
    /// principals is refused).
    pub fn parse(text: &str) -> Result<AccessFile, String> {
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            yaml_serde::from_str(text).map_err(|e| e.to_string())?
        };
        let mut hashes = BTreeMap::new();
        let mut users = BTreeMap::new();
        for (name, user) in file.users {
            let who = format!("users: {name:?}");
            let grant = grant(format!("user {name:?}"), &user.roles, user.push, &who)?;
            hashes.insert(name.clone(), user.password);
            users.insert(name, Arc::new(grant));
        }
        let passwords = Arc::new(BcryptUsers::new("users", hashes)?);
        let mut tokens: Vec<([u8; 32], Arc<Grant>)> = Vec::new();
        let mut names = BTreeSet::new();
        for (i, token) in file.tokens.into_iter().enumerate() {
            if token.name.is_empty() {
                return Err(format!("tokens: entry {} has no name", i + 1));
            }
            let who = format!("tokens: {:?}", token.name);
            if !names.insert(token.name.clone()) {
                return Err(format!("{who}: the name appears twice"));
            }
            let sha256 = sha256_hex(&token.sha256).ok_or_else(|| {
                format!(
                    "{who}: sha256 must be 64 hexadecimal digits, the SHA-256 of the token \
                     (printf %s TOKEN | sha256sum), not the token itself"
                )
            })?;
            if tokens.iter().any(|(other, _)| *other == sha256) {
                return Err(format!("{who}: the same sha256 as another token"));
            }
            let grant = grant(format!("token {:?}", token.name), &token.roles, token.push, &who)?;
            tokens.push((sha256, Arc::new(grant)));
        }
        Ok(AccessFile { passwords, users, tokens })
    }
}

/// The grant of one user or token; `who` prefixes errors.
fn grant(principal: String, roles: &[String], push: Option<Vec<RuleFile>>, who: &str) -> Result<Grant, String> {
    let roles = roles
        .iter()
        .map(|r| Role::parse(r).ok_or_else(|| format!("{who}: unknown role {r:?} (the roles are push, read, admin)")))
        .collect::<Result<BTreeSet<Role>, String>>()?;
    let push = match push {
        None => None,
        Some(_) if !roles.contains(&Role::Push) => {
            return Err(format!("{who}: push rules without the push role"));
        }
        Some(rules) => {
            let rules = rules
                .into_iter()
                .enumerate()
                .map(|(i, rule)| push_rule(rule).map_err(|e| format!("{who}: push rule {}: {e}", i + 1)))
                .collect::<Result<Vec<_>, _>>()?;
            Some(PushScope::new(rules).ok_or_else(|| {
                format!("{who}: an empty list of push rules allows no group; leave `push` out to allow every group")
            })?)
        }
    };
    Ok(Grant { principal, roles, push })
}

fn push_rule(rule: RuleFile) -> Result<PushRule, String> {
    let regex = |source: &str, key: &str| Pattern::regex(source).map_err(|e| format!("{key} {source:?}: {e}"));
    let job = match (rule.job, rule.job_regex) {
        (Some(glob), None) => Pattern::Glob(glob),
        (None, Some(source)) => regex(&source, "job_regex")?,
        (None, None) => return Err("needs job (a glob) or job_regex".into()),
        (Some(_), Some(_)) => return Err("has both job and job_regex; give one".into()),
    };
    let mut labels = BTreeMap::new();
    for (name, glob) in rule.labels {
        labels.insert(name, Pattern::Glob(glob));
    }
    for (name, source) in rule.labels_regex {
        let pattern = regex(&source, &format!("labels_regex {name}"))?;
        if labels.insert(name.clone(), pattern).is_some() {
            return Err(format!("label {name} is in both labels and labels_regex"));
        }
    }
    if labels.contains_key("job") {
        return Err("the job is matched by job or job_regex, not among the labels".into());
    }
    Ok(PushRule { job, labels })
}

/// 64 hexadecimal digits (either case) as 32 bytes.
fn sha256_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn hash() -> String {
        bcrypt::hash("pw", 4).unwrap()
    }

    #[test]
    fn a_complete_file_is_read() {
        let text = format!(
            "users:\n  ci:\n    password: \"{hash}\"\n    roles: [push]\n    push:\n      \
             - job: \"batch-*\"\n        labels: {{shard: \"*\"}}\n      - job_regex: \"nightly-.+\"\n  \
             ops:\n    password: \"{hash}\"\n    roles: [read, admin, push]\n\
             tokens:\n  - name: prometheus\n    sha256: \"{TEST_SHA256}\"\n    roles: [read]\n",
            hash = hash()
        );
        let file = AccessFile::parse(&text).unwrap();
        assert_eq!(file.passwords.names().collect::<Vec<_>>(), ["ci", "ops"]);
        let ci = &file.users["ci"];
        assert_eq!(ci.principal, "user \"ci\"");
        assert_eq!(ci.roles, BTreeSet::from([Role::Push]));
        assert_eq!(ci.push.as_ref().unwrap().to_string(), r#"job "batch-*" with shard "*"; job matching "nightly-.+""#);
        assert!(file.users["ops"].push.is_none(), "no rules: every group");
        assert_eq!(file.tokens.len(), 1);
        assert_eq!(file.tokens[0].0[..2], [0x9f, 0x86]);
        assert_eq!(file.tokens[0].1.principal, "token \"prometheus\"");
        assert!(AccessFile::parse("").unwrap().users.is_empty(), "an empty file: nobody");
    }

    /// Each mistake is refused with an error that names what is wrong and where.
    #[test]
    fn mistakes_are_refused_with_clear_errors() {
        let h = hash();
        let user = |rest: &str| format!("users:\n  ci:\n    password: \"{h}\"\n{rest}");
        let token = |sha: &str| format!("tokens:\n  - name: prom\n    sha256: \"{sha}\"\n    roles: [read]\n");
        let cases: Vec<(&str, String, &str)> = vec![
            ("bad YAML", "users: {ci: a\n  - b\n".into(), "at line"),
            ("not a map", "users: [a, b]\n".into(), "invalid type"),
            ("unknown key", "groups: {}\n".into(), "unknown field `groups`"),
            ("unknown user key", user("    roles: [push]\n    role: admin\n"), "unknown field `role`"),
            ("no roles key", user(""), "missing field `roles`"),
            ("unknown role", user("    roles: [push, pusher]\n"), r#"users: "ci": unknown role "pusher""#),
            (
                "bad bcrypt hash",
                "users:\n  ci:\n    password: hunter2\n    roles: [push]\n".into(),
                r#"users: the password of "ci" is not a bcrypt hash"#,
            ),
            ("short sha256", token("9f86d081"), r#"tokens: "prom": sha256 must be 64 hexadecimal digits"#),
            ("sha256 not hex", token(&"g".repeat(64)), "sha256 must be 64 hexadecimal digits"),
            (
                "two tokens alike",
                format!("{}{}", token(TEST_SHA256), token(TEST_SHA256).replace("tokens:\n", "")),
                r#"tokens: "prom": the name appears twice"#,
            ),
            (
                "unnamed token",
                format!("tokens:\n  - name: \"\"\n    sha256: {TEST_SHA256}\n    roles: [read]\n"),
                "entry 1 has no name",
            ),
            (
                "bad regex",
                user("    roles: [push]\n    push:\n      - job_regex: \"(\"\n"),
                r#"users: "ci": push rule 1: job_regex "(": regex parse error"#,
            ),
            (
                "bad label regex",
                user("    roles: [push]\n    push:\n      - job: a\n        labels_regex: {shard: \"[\"}\n"),
                r#"push rule 1: labels_regex shard "[""#,
            ),
            (
                "rule without a job",
                user("    roles: [push]\n    push:\n      - labels: {a: b}\n"),
                "push rule 1: needs job",
            ),
            (
                "job and job_regex",
                user("    roles: [push]\n    push:\n      - {job: a, job_regex: a}\n"),
                "has both job and job_regex",
            ),
            (
                "job among labels",
                user("    roles: [push]\n    push:\n      - {job: a, labels: {job: b}}\n"),
                "not among the labels",
            ),
            ("empty rules", user("    roles: [push]\n    push: []\n"), "allows no group"),
            ("rules without the role", user("    roles: [read]\n    push:\n      - job: a\n"), "without the push role"),
        ];
        for (i, (name, text, why)) in cases.into_iter().enumerate() {
            let e = AccessFile::parse(&text).err().unwrap_or_else(|| panic!("case {} ({name}) was accepted", i + 1));
            assert!(e.contains(why), "case {} ({name}): {e}", i + 1);
        }
    }
}
