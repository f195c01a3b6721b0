//! The machine's own limits, with Tessera's code and parameters and no HTTP: password
//! verifications per second through the bounded hashing pool on all cores, and RS256
//! signatures per second with a parsed 2048-bit key on all cores. `bench/run` divides the
//! service's throughput by these.
//!
//! cargo run --release --example bench_floors -- [SECONDS] [hash|sign]   (prints one JSON object;
//! with `hash` or `sign`, only that floor is measured and the other is 0)

use secrecy::SecretString;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tessera::crypto::keys::{RsaBits, RsaSigner, generate_rsa};
use tessera::crypto::password::{HashCost, Hasher};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let only = std::env::args().nth(2).unwrap_or_default();
    let cores = std::thread::available_parallelism()?.get();
    let window = Duration::from_secs(secs);
    let cost = HashCost::default();
    let hash_per_sec = if only == "sign" {
        0.0
    } else {
        hash_floor(cost, cores, window).await?
    };
    let sign_per_sec = if only == "hash" {
        0.0
    } else {
        sign_floor(cores, window)?
    };
    println!(
        "{{\"cores\":{cores},\"argon2_memory_kib\":{},\"argon2_iterations\":{},\"hash_verify_per_sec\":{hash_per_sec:.1},\"rs256_sign_per_sec\":{sign_per_sec:.1},\"seconds\":{secs}}}",
        cost.memory_kib, cost.iterations
    );
    Ok(())
}

/// Verifications per second with as many in flight as the pool runs.
async fn hash_floor(
    cost: HashCost,
    cores: usize,
    window: Duration,
) -> Result<f64, Box<dyn std::error::Error>> {
    let hasher = Hasher::new(cost, cores, cores * 32)?;
    let password = SecretString::from("0123456789abcdef0123456789abcdef".to_owned());
    let stored = hasher.hash(&password).await?;
    let verified = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cores * 2 {
        let (hasher, stored, password, verified) = (
            hasher.clone(),
            stored.clone(),
            password.clone(),
            verified.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < window {
                if hasher.verify(&password, Some(&stored)).await.is_ok() {
                    verified.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(verified.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Signatures per second with one parsed key and one signing thread per core.
fn sign_floor(cores: usize, window: Duration) -> Result<f64, Box<dyn std::error::Error>> {
    let key = generate_rsa(RsaBits::B2048)?;
    let signer = Arc::new(RsaSigner::from_pkcs8("floor", &key.pkcs8)?);
    let message = [7u8; 300];
    let start = Instant::now();
    let signed: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                let signer = signer.clone();
                s.spawn(move || {
                    let mut n = 0u64;
                    while start.elapsed() < window {
                        if signer.sign(&message).is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    Ok(signed as f64 / start.elapsed().as_secs_f64())
}
