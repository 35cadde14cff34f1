//! `Type=notify` readiness (deploy/hostmedic.service): the real `hostmedic`
//! binary, started with `NOTIFY_SOCKET` pointing at a datagram socket this
//! test binds (as systemd does), sends `READY=1` only once its listener
//! accepts connections, and `STOPPING=1` when SIGTERM stops it.

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child if the test ends early (a failed assertion).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next datagram on `sock`, as text, within `timeout`.
fn recv(sock: &UnixDatagram, timeout: Duration) -> Option<String> {
    sock.set_read_timeout(Some(timeout)).expect("read timeout");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn ready_is_sent_after_the_listener_accepts_and_stopping_at_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("binding the notify socket");
    // A free port: bound by the OS, released for hostmedic to take.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    // Nothing listens before hostmedic does.
    assert!(TcpStream::connect(&addr).is_err(), "{addr} already taken");

    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_hostmedic"))
        .args(["--web.listen-address", &addr, "--log.level", "warn", "serve"])
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("HOSTMEDIC_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting hostmedic");
    let mut child = Running(child);

    let msg = recv(&sock, Duration::from_secs(60)).expect("no notification within 60 s");
    let lines: Vec<&str> = msg.lines().collect();
    assert!(lines.contains(&"READY=1"), "first notification is not READY=1: {msg:?}");
    // READY means "accepting": the very first connection attempt succeeds.
    TcpStream::connect(&addr).unwrap_or_else(|e| panic!("READY=1 sent but {addr} refuses: {e}"));
    println!("ready_after_seconds={:.3}", started.elapsed().as_secs_f64());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let msg = recv(&sock, Duration::from_secs(30)).expect("no notification after SIGTERM");
    assert!(msg.lines().any(|l| l == "STOPPING=1"), "expected STOPPING=1: {msg:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("waiting for hostmedic") {
            break s;
        }
        assert!(Instant::now() < deadline, "hostmedic still running 30 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "hostmedic exited with {status}");
}
