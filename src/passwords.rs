//! Basic-authentication passwords checked against bcrypt hashes, for both user lists:
//! `basic_auth_users` of `--web.config.file` and `users` of `--web.access-config.file`.
//! bcrypt is slow on purpose (tens of milliseconds), so checks are bounded process-wide
//! (one per core at once) and a name and password pair that verified is remembered.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// User names and their bcrypt hashes, with the pairs that verified.
#[derive(Default)]
pub struct BcryptUsers {
    hashes: BTreeMap<String, String>,
    /// Name and password pairs that verified: a scraper sends the same pair every few
    /// seconds, and bcrypt is slow on purpose.
    verified: Mutex<HashSet<(String, String)>>,
}

/// Password checks (bcrypt) running at once, process-wide: one per core. Requests beyond
/// wait (each on a connection, which the listeners cap), verified pairs do not.
static PASSWORD_CHECKS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

/// Pairs kept in [`BcryptUsers::verified`] before it is emptied.
const MAX_VERIFIED: usize = 1024;

/// A bcrypt hash of nothing anyone sends, checked for unknown users so that the time of a
/// refusal does not tell whether the user exists.
const UNKNOWN_USER_HASH: &str = "$2y$10$XokSR./LFKeiEqMe4ChnxeqlRCFjPQe/mbmXDXbAkszYb5T..CqK6";

impl BcryptUsers {
    /// Checks that every hash is a bcrypt hash; `list` names the user list in the error
    /// (`basic_auth_users`, `users`).
    pub fn new(list: &str, hashes: BTreeMap<String, String>) -> Result<Self, String> {
        for (user, hash) in &hashes {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("{list}: the password of {user:?} is not a bcrypt hash: {e}"))?;
        }
        Ok(BcryptUsers { hashes, verified: Mutex::default() })
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `user` is listed.
    pub fn contains(&self, user: &str) -> bool {
        self.hashes.contains_key(user)
    }

    /// The user names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.hashes.keys().map(String::as_str)
    }

    /// Whether `user` is listed with `password`. A pair not seen to verify before is
    /// checked on the blocking pool, among at most one check per core; an unknown user
    /// costs the same check, so the time of a refusal does not tell whether it exists.
    pub async fn verify(self: &Arc<Self>, user: String, password: String) -> bool {
        let pair = (user, password);
        if self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&pair) {
            return true;
        }
        // Bounded: a flood of requests with made-up passwords must not take every thread
        // of the blocking pool (scrapes render there) or every core.
        let Ok(_checking) = PASSWORD_CHECKS.acquire().await else {
            return false;
        };
        let users = self.clone();
        tokio::task::spawn_blocking(move || {
            let (hash, known) = match users.hashes.get(&pair.0) {
                Some(hash) => (hash.as_str(), true),
                None => (UNKNOWN_USER_HASH, false),
            };
            let ok = bcrypt::verify(&pair.1, hash).unwrap_or(false) && known;
            if ok {
                let mut verified = users.verified.lock().unwrap_or_else(|e| e.into_inner());
                if verified.len() >= MAX_VERIFIED {
                    verified.clear();
                }
                verified.insert(pair);
            }
            ok
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listed_user_with_its_password_verifies_and_nothing_else_does() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let users = Arc::new(BcryptUsers::new("users", BTreeMap::from([("ci".to_string(), hash)])).unwrap());
        assert!(users.verify("ci".into(), "pw".into()).await);
        assert!(users.verify("ci".into(), "pw".into()).await, "remembered");
        assert!(!users.verify("ci".into(), "wrong".into()).await);
        assert!(!users.verify("nobody".into(), "pw".into()).await);
        let e = BcryptUsers::new("users", BTreeMap::from([("ci".to_string(), "pw".to_string())])).err().unwrap();
        assert!(e.starts_with("users: the password of \"ci\" is not a bcrypt hash"), "{e}");
    }
}
