//! Password hashing (DESIGN.md §3.2): Argon2id of the CosyncJWT wire form (lower-case hex MD5),
//! run off the async workers on a bounded pool so a login flood cannot exhaust CPU or memory.

use argon2::password_hash::PasswordHasher as _;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Argon2id cost; the defaults are the OWASP parameters (19 MiB, t=2, p=1).
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full: answer quickly instead of queueing forever.
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed")]
    Failed,
}

/// Outcome of verifying a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but the stored hash uses other parameters or a legacy scheme: store this one.
    YesRehash(String),
}

/// A hashing job for one of the pool's threads, with the thread's own Argon2 memory.
type Job = Box<dyn FnOnce(&Argon2<'static>, &mut Vec<Block>) + Send>;

/// Largest Argon2 memory a stored hash may ask for (256 MiB): a hash imported from elsewhere
/// cannot make a login allocate gigabytes.
const MAX_VERIFY_BLOCKS: usize = 256 * 1024;

/// Bounded Argon2id pool: `workers` threads of its own hash, at most `queue` more jobs wait.
/// Own threads rather than tokio's blocking pool: each thread that ever hashed keeps its
/// allocator arena, and a few hundred blocking threads would each keep a 19 MiB one.
#[derive(Clone)]
pub struct Hasher {
    argon: Argon2<'static>,
    jobs: std::sync::mpsc::Sender<Job>,
    in_flight: Arc<AtomicUsize>,
    limit: usize,
    dummy: Arc<String>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hasher(limit {})", self.limit)
    }
}

impl Hasher {
    pub fn new(cost: HashCost, workers: usize, queue: usize) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
            .map_err(|_| HashError::Failed)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let workers = workers.max(1);
        // Unknown users are verified against this hash so a miss costs what a hit costs.
        let dummy: PasswordHash = argon
            .hash_password(b"tessera dummy password")
            .map_err(|_| HashError::Failed)?;
        let (jobs, queue_rx) = std::sync::mpsc::channel::<Job>();
        let queue_rx = Arc::new(std::sync::Mutex::new(queue_rx));
        for i in 0..workers {
            let (rx, argon) = (queue_rx.clone(), argon.clone());
            std::thread::Builder::new()
                .name(format!("tessera-hash-{i}"))
                .spawn(move || {
                    // Argon2's working memory, allocated once per thread and reused by every
                    // verification, instead of 19 MiB allocated and faulted in per login.
                    let mut memory = Vec::new();
                    // Ends when every Hasher (and so every sender) is gone.
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&argon, &mut memory),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|_| HashError::Failed)?;
        }
        Ok(Self {
            argon,
            jobs,
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit: workers + queue,
            dummy: Arc::new(dummy.to_string()),
        })
    }

    /// Jobs running or waiting right now (for metrics).
    pub fn queue_depth(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Argon2<'static>, &mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let guard = InFlight(self.in_flight.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |argon, memory| {
                let _ = tx.send(job(argon, memory));
            }))
            .map_err(|_| HashError::Failed)?;
        let out = rx.await.map_err(|_| HashError::Failed);
        drop(guard);
        out
    }

    /// Hashes the wire-form password into a PHC string.
    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let pw = SecretString::from(password.expose_secret().to_owned());
        self.run(move |argon, memory| hash_argon2(argon, pw.expose_secret().as_bytes(), memory))
            .await?
    }

    /// Verifies against a stored PHC string (Argon2id, or a legacy bcrypt hash).
    /// `None` verifies against a dummy hash and always answers `No`, taking the same time.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let pw = SecretString::from(password.expose_secret().to_owned());
        let known = stored.is_some();
        let stored = stored.unwrap_or(self.dummy.as_str()).to_owned();
        let this = self.clone();
        self.run(move |argon, memory| {
            let ok = if is_bcrypt(&stored) {
                // Imported from CosyncJWT (spec §8): bcrypt of the same md5 wire form.
                bcrypt::verify(pw.expose_secret().as_bytes(), &stored).unwrap_or(false)
            } else {
                verify_argon2(&stored, pw.expose_secret().as_bytes(), memory)
            };
            if !(ok && known) {
                return Verified::No;
            }
            if this.needs_rehash(&stored) {
                match hash_argon2(argon, pw.expose_secret().as_bytes(), memory) {
                    Ok(h) => Verified::YesRehash(h),
                    Err(_) => Verified::Yes,
                }
            } else {
                Verified::Yes
            }
        })
        .await
    }

    fn needs_rehash(&self, stored: &str) -> bool {
        let current = self.argon.params();
        let wanted = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            current.m_cost(),
            current.t_cost(),
            current.p_cost()
        );
        !stored.starts_with(&wanted)
    }
}

/// Length of the random salt of a new hash (as `argon2`'s own `hash_password` uses).
const SALT_LEN: usize = 16;

/// Hashes into the worker's reused block buffer and writes the PHC string
/// (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, base64 without padding), as `hash_password`
/// would, without allocating 19 MiB per call.
fn hash_argon2(
    argon: &Argon2<'_>,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<String, HashError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let salt: [u8; SALT_LEN] = crate::crypto::random::bytes().map_err(|_| HashError::Failed)?;
    let params = argon.params();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon
        .hash_password_into_with_memory(password, &salt, &mut out, blocks_for(params, memory))
        .map_err(|_| HashError::Failed)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        b64.encode(salt),
        b64.encode(&out)
    ))
}

/// The first `params.block_count()` blocks of the worker's buffer, growing it once to the
/// largest cost seen; the buffer is kept for the next job.
fn blocks_for<'m>(params: &Params, memory: &'m mut Vec<Block>) -> &'m mut [Block] {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    &mut memory[..blocks]
}

/// Verifies `password` against a PHC Argon2 string in the worker's buffer, comparing in
/// constant time.
fn verify_argon2(stored: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.block_count() > MAX_VERIFY_BLOCKS {
        return false;
    }
    let mut out = vec![0u8; expected.as_ref().len()];
    let memory = blocks_for(&params, memory);
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)
        .is_ok()
        && super::keyring::ct_eq(&out, expected.as_ref())
}

/// A bcrypt hash in the modular crypt form the reference stored (`$2a$`, `$2b$`, `$2y$`);
/// such hashes verify at login and are replaced by Argon2id on the first success.
pub fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
        && stored.len() == 60
        && bcrypt_cost(stored).is_some_and(|c| (4..=MAX_BCRYPT_COST).contains(&c))
}

/// The highest bcrypt cost accepted (the reference used 10). Each step doubles the work: a
/// hash at cost 31 would hold a hashing worker for a day and a half per login attempt.
pub const MAX_BCRYPT_COST: u32 = 14;

fn bcrypt_cost(stored: &str) -> Option<u32> {
    stored.get(4..6)?.parse().ok()
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(
            HashCost {
                memory_kib: 1024,
                iterations: 1,
            },
            2,
            4,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = cheap();
        let pw = SecretString::from("5f4dcc3b5aa765d61d8327deb882cf99");
        let stored = h.hash(&pw).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(h.verify(&pw, Some(&stored)).await.unwrap(), Verified::Yes);
        let wrong = SecretString::from("00000000000000000000000000000000");
        assert_eq!(h.verify(&wrong, Some(&stored)).await.unwrap(), Verified::No);
        assert_eq!(h.verify(&pw, None).await.unwrap(), Verified::No);
        assert_eq!(h.verify(&pw, Some("garbage")).await.unwrap(), Verified::No);
    }

    #[tokio::test]
    async fn new_hashes_are_phc_strings_argon2_itself_verifies() {
        use argon2::password_hash::PasswordVerifier as _;
        let h = cheap();
        let pw = SecretString::from("5f4dcc3b5aa765d61d8327deb882cf99");
        let (a, b) = (h.hash(&pw).await.unwrap(), h.hash(&pw).await.unwrap());
        assert_ne!(a, b, "a fresh salt each time");
        for stored in [a, b] {
            let parsed = PasswordHash::new(&stored).unwrap();
            assert_eq!(parsed.salt.unwrap().as_ref().len(), SALT_LEN);
            assert_eq!(parsed.hash.unwrap().as_ref().len(), 32);
            let argon = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(1024, 1, 1, None).unwrap(),
            );
            assert!(
                argon
                    .verify_password(b"5f4dcc3b5aa765d61d8327deb882cf99", &parsed)
                    .is_ok()
            );
            assert!(
                argon
                    .verify_password(b"5f4dcc3b5aa765d61d8327deb882cf98", &parsed)
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn default_cost_is_owasp_and_old_params_are_rehashed() {
        let strong = Hasher::new(HashCost::default(), 1, 1).unwrap();
        let pw = SecretString::from("5f4dcc3b5aa765d61d8327deb882cf99");
        let stored = strong.hash(&pw).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        match cheap().verify(&pw, Some(&stored)).await.unwrap() {
            Verified::YesRehash(new) => assert!(new.starts_with("$argon2id$v=19$m=1024,t=1,p=1$")),
            other => panic!("expected a rehash, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn imported_bcrypt_verifies_and_is_rehashed_to_argon2id() {
        let h = cheap();
        let pw = SecretString::from("5f4dcc3b5aa765d61d8327deb882cf99");
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let b = bcrypt::hash_with_result(pw.expose_secret(), 4)
                .unwrap()
                .format_for_version(bcrypt::Version::TwoB);
            let stored = format!("{prefix}{}", &b[4..]);
            assert!(is_bcrypt(&stored));
            match h.verify(&pw, Some(&stored)).await.unwrap() {
                Verified::YesRehash(new) => {
                    assert!(
                        new.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
                        "{prefix}"
                    )
                }
                other => panic!("{prefix}: expected a rehash, got {other:?}"),
            }
            let wrong = SecretString::from("00000000000000000000000000000000");
            assert_eq!(h.verify(&wrong, Some(&stored)).await.unwrap(), Verified::No);
        }
        assert!(!is_bcrypt("$2b$04$short"));
        // A cost that would hold a worker for hours is not a hash Tessera runs.
        let costly = format!("$2b$31${}", "a".repeat(53));
        assert!(!is_bcrypt(&costly));
        assert_eq!(h.verify(&pw, Some(&costly)).await.unwrap(), Verified::No);
        assert_eq!(
            h.verify(
                &pw,
                Some("$2b$04$garbagegarbagegarbagegarbagegarbagegarbagegarbagegarbag")
            )
            .await
            .unwrap(),
            Verified::No
        );
    }

    #[tokio::test]
    async fn saturated_pool_answers_busy() {
        let h = Hasher::new(HashCost::default(), 1, 0).unwrap();
        let pw = SecretString::from("5f4dcc3b5aa765d61d8327deb882cf99");
        let (a, b) = tokio::join!(h.hash(&pw), h.hash(&pw));
        let busy = [a.is_err(), b.is_err()].iter().filter(|x| **x).count();
        assert_eq!(busy, 1, "one of two concurrent jobs must be refused");
        assert_eq!(h.queue_depth(), 0);
    }
}
