//! A private network made of Linux network namespaces for fleet tests: a
//! "hub" namespace holding a bridge (and whatever the test runs there, e.g.
//! Prometheus and Alertmanager), and one namespace per test host, each with
//! one veth end on the bridge and its own address. Everything — addresses,
//! routes, interfaces — lives inside namespaces this harness creates with
//! unique names; the machine's own interfaces and routing are never touched.
//! Torn down (`ip netns del`) on drop.

use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `ip <args>`; panics with its output on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2) must be installed");
    assert!(
        out.status.success(),
        "ip {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique namespace name prefix for this process.
fn unique_prefix() -> String {
    format!("hmf{}x{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Whether this process may create network namespaces: `Err(reason)` if not.
pub fn permitted() -> Result<(), String> {
    let name = format!("{}probe", unique_prefix());
    let out = Command::new("ip")
        .args(["netns", "add", &name])
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ip netns add` not permitted: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let _ = Command::new("ip").args(["netns", "del", &name]).output();
    Ok(())
}

/// One test host: its namespace and address on the private network.
#[derive(Debug, Clone)]
pub struct Host {
    pub netns: String,
    pub addr: std::net::Ipv4Addr,
}

/// The private network: a hub with a bridge at `<prefix>.1/24` and hosts.
pub struct Lab {
    pub hub: String,
    pub hub_addr: std::net::Ipv4Addr,
    pub hosts: Vec<Host>,
    created: Vec<String>,
}

impl Lab {
    /// Creates the hub (bridge `br0` at `hub_addr/24`, loopback up) and one
    /// namespace per address in `hosts`, each linked to the bridge by a veth
    /// pair (`eth0` in the host, `v<i>` on the bridge).
    pub fn new(hub_addr: std::net::Ipv4Addr, hosts: &[std::net::Ipv4Addr]) -> Lab {
        let prefix = unique_prefix();
        let hub = format!("{prefix}hub");
        let mut lab = Lab {
            hub: hub.clone(),
            hub_addr,
            hosts: Vec::new(),
            created: Vec::new(),
        };
        ip(&["netns", "add", &hub]);
        lab.created.push(hub.clone());
        ip(&["-n", &hub, "link", "set", "lo", "up"]);
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &hub, "addr", "add", &format!("{hub_addr}/24"), "dev", "br0"]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for (i, addr) in hosts.iter().enumerate() {
            let ns = format!("{prefix}h{i}");
            ip(&["netns", "add", &ns]);
            lab.created.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let port = format!("v{i}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &hub, "link", "set", &port, "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            lab.hosts.push(Host { netns: ns, addr: *addr });
        }
        lab
    }

    /// Moves the calling thread into the hub's network namespace (its
    /// sockets and the processes it spawns from then on live there).
    pub fn enter_hub(&self) {
        enter(&self.hub);
    }
}

/// Moves the calling thread into the named network namespace.
pub fn enter(netns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{netns}")).expect("namespace file");
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Hosts first, then the hub; deleting a namespace removes its veth ends.
        for ns in self.created.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
