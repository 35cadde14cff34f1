//! Churn: every action that changes a target whose state flips on its own,
//! run 30 times against a flapping target at a random phase, on real parts —
//! a container that exits every 0.2–0.5 s under `--restart=always` on the
//! private engine, a unit with `Restart=always RestartSec=100ms` in the
//! booted systemd rootfs, and processes that fork and exit. Every run must
//! end `ok` (never `failed`), and every verification must judge the end
//! state right: `verified` where the end state is the wanted one (a stopped
//! loop, a masked unit, a process gone), `not_helped` where it is not (a
//! restart of what keeps crashing).
//!
//! Each test prints one `churn:` line (runs, retried runs, failures, median
//! and worst time from the action's start to the verdict) for BENCHMARKS.md;
//! `--no-capture` shows them. The random phase's seed is printed too, so a
//! failing sequence can be replayed (`CHURN_SEED`).

use crate::common;

use std::time::{Duration, Instant};

use common::docker::{BUSYBOX_IMAGE, PrivateEngine};
use common::systemd::{Spec, SystemdMachine, boot_or_skip};
use hostmedic::actions::{
    ActionEnv, ActionSpec, Alert, AlertStatus, Context, DockerAction, DockerOp, KillAction, OutcomeResult, Resolved,
    SystemdAction, SystemdOp, Verification,
};

const RUNS: usize = 30;

/// A small xorshift: the phases need no more, and the seed is printed.
struct Phase(u64);

impl Phase {
    fn new(what: &str) -> Phase {
        let seed = std::env::var("CHURN_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("churn {what}: seed {seed} (CHURN_SEED={seed} replays it)");
        Phase(seed)
    }

    /// A pause of 0..`max_ms` milliseconds.
    fn pause(&mut self, max_ms: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(self.0 % max_ms.max(1))
    }
}

/// What the runs of one action came to.
#[derive(Default)]
struct Tally {
    runs: usize,
    retried: usize,
    failures: Vec<String>,
    to_verdict: Vec<Duration>,
}

impl Tally {
    /// Records one run: `want` is the right verdict for the end state.
    fn record(&mut self, n: usize, o: &hostmedic::actions::Outcome, v: &Verification, want: &str, took: Duration) {
        self.runs += 1;
        self.to_verdict.push(took);
        if o.detail.contains("done on try") {
            self.retried += 1;
        }
        let got = match v {
            Verification::Verified => "verified",
            Verification::NotHelped(_) => "not_helped",
            Verification::NotApplicable => "not_applicable",
        };
        if o.result != OutcomeResult::Ok || got != want {
            self.failures.push(format!(
                "run {n}: {} ({}) then {got} (want {want}): {v:?}",
                o.result, o.detail
            ));
        }
    }

    fn report(mut self, what: &str) {
        self.to_verdict.sort();
        let median = self
            .to_verdict
            .get(self.to_verdict.len() / 2)
            .copied()
            .unwrap_or_default();
        let worst = self.to_verdict.last().copied().unwrap_or_default();
        println!(
            "churn: {what}: {} runs, {} retried, {} failed, to verdict median {:.2} s, worst {:.2} s",
            self.runs,
            self.retried,
            self.failures.len(),
            median.as_secs_f64(),
            worst.as_secs_f64()
        );
        assert!(self.failures.is_empty(), "{what}:\n{}", self.failures.join("\n"));
        assert_eq!(self.runs, RUNS);
    }
}

fn alert(labels: &[(&str, &str)]) -> Alert {
    Alert {
        alertname: "Churn".into(),
        status: AlertStatus::Firing,
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        fingerprint: "c0ffee".into(),
        starts_at: "2026-12-07T07:00:00Z".into(),
        ..Alert::default()
    }
}

/// Runs `spec` for `a`, then verifies it within `deadline`; the outcome,
/// the verdict and the time from the start to the verdict.
async fn act_and_verify(
    spec: &ActionSpec,
    a: &Alert,
    env: &ActionEnv,
    deadline: Duration,
) -> (hostmedic::actions::Outcome, Verification, Duration) {
    let c = spec
        .compile("churn.action", &Context { channels: &env.notify })
        .expect("valid spec");
    let t: Resolved = c.resolve(a).expect("target");
    let started = Instant::now();
    let o = t.run(a, env).await;
    let v = t.verify(env, deadline).await;
    (o, v, started.elapsed())
}

// ---------------------------------------------------------------- docker

/// Exits after 0.2–0.5 s, always restarted by the engine.
const FLAP: &str = "sleep 0.$((2 + RANDOM % 4)); exit 1";

fn docker_spec(op: DockerOp, policy: Option<&str>, dependents: bool) -> ActionSpec {
    ActionSpec::from(DockerAction {
        op,
        container: "{{ labels.container }}".into(),
        policy: policy.map(str::to_string),
        restart_dependents: dependents,
    })
}

fn docker_env(e: &PrivateEngine) -> ActionEnv {
    ActionEnv {
        docker_host: Some(e.docker_host()),
        ..ActionEnv::default()
    }
}

/// A container under `--restart=always` that exits every 0.2–0.5 s, seen
/// restarting before the runs start.
async fn flapping(e: &PrivateEngine, name: &str) {
    e.run_detached(&["--name", name, "--restart=always", BUSYBOX_IMAGE, "sh", "-c", FLAP]);
    common::eventually(Duration::from_secs(30), "the container restarting", || {
        let n: i64 = e.inspect(name, "{{.RestartCount}}").trim().parse().unwrap_or(0);
        async move { (n >= 2).then_some(()) }
    })
    .await;
}

/// The test's own `docker` calls race the loop too: `docker update` is
/// made again while the engine answers that the container changed state.
fn docker_retrying(e: &PrivateEngine, args: &[&str]) {
    // A parent in its restart back-off can be down for seconds.
    for _ in 0..600 {
        if e.docker_output(args).status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("docker {args:?} kept failing");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_restart_policy_off_ends_a_fast_restart_loop_at_any_phase() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    flapping(&e, "flap").await;
    let (env, a) = (docker_env(&e), alert(&[("container", "flap")]));
    let spec = docker_spec(DockerOp::RestartPolicy, Some("no"), false);
    let (mut phase, mut tally) = (Phase::new("docker restart-policy"), Tally::default());
    for n in 0..RUNS {
        // Back into the loop: policy always, started (which also resets the
        // engine's restart back-off), then a random point in it.
        docker_retrying(&e, &["update", "--restart=always", "flap"]);
        let _ = e.docker_output(&["start", "flap"]);
        tokio::time::sleep(phase.pause(1500)).await;
        let (o, v, took) = act_and_verify(&spec, &a, &env, Duration::from_secs(15)).await;
        tally.record(n, &o, &v, "verified", took);
        let (policy, state) = (
            e.inspect("flap", "{{.HostConfig.RestartPolicy.Name}}"),
            e.inspect("flap", "{{.State.Status}}"),
        );
        assert_eq!((policy.trim(), state.trim()), ("no", "exited"), "run {n}: {}", o.detail);
    }
    tally.report("docker restart-policy=no");
    // The engine's race is at the container's exit: a container that exits
    // at once, its policy flipped back and forth as fast as the engine
    // answers, meets it about once in a hundred updates (seen with the
    // docker CLI: 5 failed of 300). Every update must still succeed.
    e.docker(&["rm", "-f", "flap"]);
    e.run_detached(&[
        "--name",
        "flap",
        "--restart=always",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "exit 1",
    ]);
    let (mut tally, mut retried) = (0, 0);
    for n in 0..200 {
        let policy = if n % 2 == 0 { "no" } else { "always" };
        let spec = docker_spec(DockerOp::RestartPolicy, Some(policy), false);
        let t = spec
            .compile("test.action", &Context::default())
            .expect("valid spec")
            .resolve(&a)
            .unwrap();
        let o = t.run(&a, &env).await;
        assert_eq!(o.result, OutcomeResult::Ok, "update {n}: {}", o.detail);
        tally += 1;
        retried += usize::from(o.detail.contains("done on try"));
    }
    println!(
        "churn: docker restart-policy flipped on a container exiting at once: {tally} updates, {retried} retried, 0 failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_stop_and_restart_of_a_fast_restart_loop_at_any_phase() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    flapping(&e, "flap").await;
    let (env, a) = (docker_env(&e), alert(&[("container", "flap")]));
    let stop = docker_spec(DockerOp::Stop, None, false);
    let (mut phase, mut tally) = (Phase::new("docker stop"), Tally::default());
    for n in 0..RUNS {
        let _ = e.docker_output(&["start", "flap"]);
        tokio::time::sleep(phase.pause(1500)).await;
        let (o, v, took) = act_and_verify(&stop, &a, &env, Duration::from_secs(15)).await;
        tally.record(n, &o, &v, "verified", took);
    }
    tally.report("docker stop");
    // A restart of what keeps crashing runs fine and is judged not helped.
    let _ = e.docker_output(&["start", "flap"]);
    let restart = docker_spec(DockerOp::Restart, None, false);
    let (mut phase, mut tally) = (Phase::new("docker restart"), Tally::default());
    for n in 0..RUNS {
        tokio::time::sleep(phase.pause(1500)).await;
        let (o, v, took) = act_and_verify(&restart, &a, &env, Duration::from_secs(2)).await;
        tally.record(n, &o, &v, "not_helped", took);
    }
    tally.report("docker restart (not helped: still crashing)");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_dependents_are_restarted_while_their_parent_restarts() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    flapping(&e, "parent").await;
    // Created, then started once the parent happens to run.
    e.docker(&[
        "create",
        "--name",
        "sharer",
        "--stop-timeout",
        "1",
        "--network",
        "container:parent",
        BUSYBOX_IMAGE,
        "sleep",
        "3000",
    ]);
    docker_retrying(&e, &["start", "sharer"]);
    let (env, a) = (docker_env(&e), alert(&[("container", "parent")]));
    let spec = docker_spec(DockerOp::Restart, None, true);
    spec.compile("churn.action", &Context::default()).unwrap();
    let (mut phase, mut tally) = (Phase::new("docker dependents"), Tally::default());
    for n in 0..RUNS {
        // The sharer must be running to count as a dependent.
        if e.inspect("sharer", "{{.State.Status}}").trim() != "running" {
            docker_retrying(&e, &["start", "sharer"]);
        }
        tokio::time::sleep(phase.pause(1500)).await;
        let parent = spec
            .compile("test.action", &Context::default())
            .expect("valid spec")
            .resolve(&a)
            .unwrap();
        let started = Instant::now();
        let o = parent.run(&a, &env).await;
        assert_eq!(o.result, OutcomeResult::Ok, "run {n}: parent: {}", o.detail);
        let followers = parent.followers(&env).await.expect("dependents");
        assert_eq!(followers.len(), 1, "run {n}: the sharer is the one dependent");
        let o = followers[0].run(&a, &env).await;
        let v = followers[0].verify(&env, Duration::from_secs(15)).await;
        tally.record(n, &o, &v, "verified", started.elapsed());
    }
    tally.report("docker restart of a dependent (network_mode container:) while the parent restarts");
}

// ---------------------------------------------------------------- systemd

/// Fails after 0.2–0.5 s; restarted after 100 ms, without a start limit.
const FLAP_UNIT: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c 'sleep 0.$$(shuf -i 2-5 -n 1); exit 1'\nRestart=always\nRestartSec=100ms\n[Install]\nWantedBy=multi-user.target\n";

fn unit_spec(op: SystemdOp) -> ActionSpec {
    ActionSpec::from(SystemdAction {
        op,
        unit: "{{ labels.name }}".into(),
        manager: "system".into(),
    })
}

/// `systemctl ARGS` in the rootfs, which must succeed.
fn systemctl(m: &SystemdMachine, args: &[&str]) {
    let (ok, out) = m.systemctl(args);
    assert!(ok, "systemctl {args:?}: {out}");
}

/// Runs `op` [`RUNS`] times against `flap.service` in its loop (`setup`
/// puts it back into the loop before each run), expecting `want`.
async fn unit_churn(m: &SystemdMachine, op: SystemdOp, want: &str, deadline: Duration, setup: &[&[&str]]) {
    let (env, a) = (m.action_env(), alert(&[("name", "flap.service")]));
    let spec = unit_spec(op);
    let (mut phase, mut tally) = (Phase::new(&format!("systemd {}", op.as_str())), Tally::default());
    for n in 0..RUNS {
        for args in setup {
            systemctl(m, args);
        }
        tokio::time::sleep(phase.pause(1000)).await;
        let (o, v, took) = act_and_verify(&spec, &a, &env, deadline).await;
        tally.record(n, &o, &v, want, took);
    }
    tally.report(&format!("systemd {} of a unit in its auto-restart loop", op.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_actions_on_a_unit_in_its_auto_restart_loop_at_any_phase() {
    let Some(m) = boot_or_skip(Spec::new().enabled_unit("flap.service", FLAP_UNIT)) else {
        return;
    };
    m.wait_for(Duration::from_secs(20), "flap.service restarting", |m| {
        m.show("flap.service", "NRestarts").parse::<u32>().unwrap_or(0) >= 2
    });
    let start: &[&str] = &["start", "flap.service"];
    unit_churn(&m, SystemdOp::Stop, "verified", Duration::from_secs(10), &[start]).await;
    unit_churn(&m, SystemdOp::Restart, "not_helped", Duration::from_secs(2), &[start]).await;
    unit_churn(
        &m,
        SystemdOp::Disable,
        "verified",
        Duration::from_secs(10),
        &[&["enable", "flap.service"], start],
    )
    .await;
    unit_churn(
        &m,
        SystemdOp::Mask,
        "verified",
        Duration::from_secs(10),
        &[&["unmask", "flap.service"], &["reset-failed", "flap.service"], start],
    )
    .await;
}

// ---------------------------------------------------------------- kill

/// A shell that forks a `sleep` of 0.2–0.5 s, waits for it and forks the
/// next, for ever; in a process group of its own, ended whole on drop.
struct Forker(std::process::Child);

impl Forker {
    fn start() -> Forker {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "while :; do sleep 0.$(shuf -i 2-5 -n 1) & wait $!; done"])
            .process_group(0)
            .spawn()
            .expect("spawn the forker");
        Forker(child)
    }
}

impl Drop for Forker {
    fn drop(&mut self) {
        // The group: the shell and its current `sleep`.
        let group = format!("-{}", self.0.id());
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status();
        let _ = self.0.wait();
    }
}

/// The forker's current `sleep` child, once it has exec'd.
async fn current_sleep(parent: u32) -> i32 {
    common::eventually(Duration::from_secs(10), "a sleep child", || {
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).unwrap_or_default();
        let pid = children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .find(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0")));
        async move { pid }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_of_processes_that_exit_on_their_own_at_any_phase() {
    let forker = Forker::start();
    let env = ActionEnv::default();
    let spec = ActionSpec::from(KillAction {
        pid: "{{ labels.pid }}".into(),
        allow: "^sleep 0\\.[2-5]$".into(),
        start_time: None,
        grace: Duration::from_secs(1),
    });
    let (mut phase, mut tally) = (Phase::new("kill"), Tally::default());
    for n in 0..RUNS {
        let pid = current_sleep(forker.0.id()).await;
        // Anywhere from well before its exit to after it.
        tokio::time::sleep(phase.pause(700)).await;
        let a = alert(&[("pid", &pid.to_string())]);
        let (o, v, took) = act_and_verify(&spec, &a, &env, Duration::from_secs(5)).await;
        tally.record(n, &o, &v, "verified", took);
    }
    drop(forker);
    tally.report("kill of a process that exits on its own");
}
