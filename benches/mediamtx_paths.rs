//! Path-creation round-trip against the in-process fake MediaMTX (goal p99 ≤ 10 ms).
//!
//! Run: `cargo bench --bench mediamtx_paths` (optionally `-- 3000` for the iteration count).
//! Measures, per iteration, on one keep-alive connection of the daemon's own client:
//! - baseline: one `GET /v3/config/global/get` (the floor: one HTTP round-trip to the fake);
//! - create: converging a new path (`GET config` → 404 → `POST add`), what a camera plug costs;
//! - unchanged: converging an existing, equal path (`GET config`, compare), what reconciliation costs;
//! - delete: `DELETE /v3/config/paths/delete/{name}`.

#[allow(unsafe_code)] // the fake sets SO_LINGER with libc to simulate a reset
#[path = "../tests/fake_mediamtx.rs"]
mod fake_mediamtx;

use std::sync::Arc;
use std::time::{Duration, Instant};

use camera_service::camera::{Camera, CameraStatus};
use camera_service::config::Config;
use camera_service::mediamtx::{converge, pathconf, Client, Converged};

fn camera(n: u32) -> Camera {
    Camera {
        identity: format!("usb-{n}"),
        resolution: "1920x1080".into(),
        fps: 30,
        ..Camera::unprobed(n, CameraStatus::Connected)
    }
}

fn report(label: &str, mut v: Vec<Duration>) -> f64 {
    v.sort();
    let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    let (p50, p99, max) = (q(0.5), q(0.99), v[v.len() - 1].as_secs_f64() * 1e3);
    println!("{label:<10} n={:<5} p50 {p50:7.3} ms   p99 {p99:7.3} ms   max {max:7.3} ms", v.len());
    p50
}

fn main() {
    let n: u32 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let fake = fake_mediamtx::FakeMediaMtx::start();
    let client = Client::new(&fake.base_url(), Duration::from_secs(5));
    let config = Arc::new(Config::default());
    let bodies: Vec<_> = (0..n).map(|i| pathconf::desired(&config, &camera(i), false)).collect();
    for _ in 0..200 {
        client.get_global_config().unwrap();
    }
    let time = |f: &mut dyn FnMut(u32)| -> Vec<Duration> {
        (0..n)
            .map(|i| {
                let t = Instant::now();
                f(i);
                t.elapsed()
            })
            .collect()
    };
    let base = time(&mut |_| {
        client.get_global_config().unwrap();
    });
    let create = time(&mut |i| {
        let r = converge(&client, &format!("camera{i}"), &bodies[i as usize]).unwrap();
        assert_eq!(r, Converged::Added);
    });
    let same = time(&mut |i| {
        let r = converge(&client, &format!("camera{i}"), &bodies[i as usize]).unwrap();
        assert_eq!(r, Converged::Unchanged);
    });
    let delete = time(&mut |i| client.delete_path(&format!("camera{i}")).unwrap());
    println!("MediaMTX path round-trips against the fake ({n} paths, one keep-alive connection)");
    let b = report("baseline", base);
    let c = report("create", create);
    let u = report("unchanged", same);
    let d = report("delete", delete);
    println!("p50 ratios to baseline: create {:.2}x, unchanged {:.2}x, delete {:.2}x", c / b, u / b, d / b);
}
