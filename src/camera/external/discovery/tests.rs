use super::super::fake_rtsp::{FakeRtsp, SDP_320X240_10};
use super::*;
use crate::process::{Shutdown, Supervisor};

fn plan(ports: Vec<u16>, paths: &[&str]) -> ScanPlan {
    ScanPlan {
        hosts: vec!["127.0.0.1".parse().unwrap()],
        ports,
        paths: paths.iter().map(|p| p.to_string()).collect(),
        timeout: Duration::from_secs(1),
        concurrency: 4,
    }
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn scan_finds_streams_and_servers_that_want_credentials() {
    let open = FakeRtsp::start(&["cam", "cam2"], SDP_320X240_10, None);
    let locked = FakeRtsp::start(&["cam"], SDP_320X240_10, Some("u:p"));
    // Something that is not RTSP at all.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = http.accept() {
            let _ = std::io::Write::write_all(&mut c, b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let p = plan(vec![open.port, locked.port, closed_port(), http_port], &["", "nope", "cam", "cam2"]);
    let t = Instant::now();
    let r = scan(&p, SCAN_LIMIT);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(r.targets, 4);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let got: Vec<(u16, &str, FoundStatus)> = r.found.iter().map(|f| (f.port, f.path.as_str(), f.status)).collect();
    let mut want = vec![
        (open.port, "cam", FoundStatus::Available),
        (open.port, "cam2", FoundStatus::Available),
        (locked.port, "", FoundStatus::AuthRequired),
    ];
    want.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want);
    let cam = r.found.iter().find(|f| f.port == open.port && f.path == "cam").unwrap();
    assert_eq!(cam.url, format!("rtsp://127.0.0.1:{}/cam", open.port));
    let info = cam.info.as_ref().unwrap();
    assert_eq!((info.width, info.height, info.fps), (Some(320), Some(240), Some(10.0)));
}

#[test]
fn a_scan_past_its_limit_says_what_it_skipped() {
    let r = scan(&plan(vec![closed_port(), closed_port()], &[""]), Duration::ZERO);
    assert!(r.found.is_empty());
    assert_eq!(r.errors, ["scan stopped at the 0 s limit: 2 of 2 targets not probed"]);
}

fn started(enabled: bool, ports: Vec<u16>, dir: &std::path::Path) -> (Supervisor, super::super::ExternalStreams) {
    let mut c = crate::config::Config { state_dir: dir.to_path_buf(), ..Default::default() };
    c.external_discovery.enabled = enabled;
    c.external_discovery.hosts = vec!["127.0.0.1/32".into()];
    c.external_discovery.ports = ports;
    c.external_discovery.paths = vec!["/cam".into()];
    let sup = Supervisor::new(Shutdown::new());
    let (ext, _) = super::super::start(&Arc::new(c), Box::new(|_| {}), &sup).unwrap();
    (sup, ext)
}

#[test]
fn the_thread_scans_on_demand_and_on_its_interval() {
    let dir = std::env::temp_dir().join(format!("cs-ext-disc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (sup, off) = started(false, vec![554], &dir);
    let e = off.discover().unwrap_err();
    assert_eq!((e.code(), e.message().as_str()), (-32030, "Unsupported"));
    assert!(!off.discovery_enabled());
    sup.shutdown().trigger();
    sup.join_all(Duration::from_secs(2));

    let fake = FakeRtsp::start(&["cam"], SDP_320X240_10, None);
    let (sup, ext) = started(true, vec![fake.port], &dir);
    let r = ext.discover().unwrap();
    assert_eq!(r.found.len(), 1);
    assert_eq!(ext.last_discovery().as_deref(), Some(&*r));
    assert!(ext.already_added(&r).is_empty());
    assert!(matches!(ext.set_discovery_interval(8 * 86_400), Err(Error::InvalidParams(_))));
    assert_eq!(ext.set_discovery_interval(1).unwrap(), 1);
    assert_eq!(ext.discovery_interval(), 1);
    // The periodic scan replaces the last report within about a second.
    let first = r.started_at;
    let deadline = Instant::now() + Duration::from_secs(5);
    while ext.last_discovery().is_none_or(|l| l.started_at == first) {
        assert!(Instant::now() < deadline, "no periodic scan");
        std::thread::sleep(Duration::from_millis(50));
    }
    sup.shutdown().trigger();
    assert!(sup.join_all(Duration::from_secs(2)).is_empty());
    // The interval set at run time outlives the restart.
    let (sup, ext) = started(true, vec![fake.port], &dir);
    assert_eq!(ext.discovery_interval(), 1);
    sup.shutdown().trigger();
    sup.join_all(Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&dir);
}
