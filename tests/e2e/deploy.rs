//! The deploy files cannot rot: the packaged configuration is valid for the
//! real binary, every file the Debian package ships exists, the unit runs
//! the path the package installs, and docs/deploy.md explains every
//! directive of the unit.

use std::path::Path;
use std::process::Command;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn packaged_config_passes_check_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_hostmedic"))
        .arg("check-config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/hostmedic.toml"))
        .env_remove("HOSTMEDIC_CONFIG")
        .output()
        .expect("running hostmedic check-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "deploy/hostmedic.toml is invalid: {stderr}");
    assert!(stderr.contains("config OK"), "{stderr}");
    // Safe out of the box: loopback, and the receiver acts on nothing.
    let effective = String::from_utf8_lossy(&out.stdout);
    assert!(effective.contains("listen_address = \"127.0.0.1:9877\""), "{effective}");
}

#[test]
fn debian_package_assets_exist_and_match_the_unit() {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().expect("assets");
    let mut dests = Vec::new();
    for a in assets {
        let a = a.as_array().expect("asset triple");
        let (src, dest) = (a[0].as_str().expect("src"), a[1].as_str().expect("dest"));
        dests.push(dest.to_string());
        if src.starts_with("target/") {
            continue; // built by `cargo deb`
        }
        let matched = glob::glob(&format!("{}/{src}", env!("CARGO_MANIFEST_DIR")))
            .expect("asset pattern")
            .count();
        assert!(matched > 0, "asset {src} matches no file");
    }
    assert!(dests.iter().any(|d| d == "usr/bin/"), "{dests:?}");
    assert!(dests.iter().any(|d| d == "etc/hostmedic/hostmedic.toml"), "{dests:?}");
    let conf = deb["conf-files"].as_array().expect("conf-files");
    assert!(conf.iter().any(|c| c.as_str() == Some("/etc/hostmedic/hostmedic.toml")));
    for script in ["postinst", "postrm"] {
        let text = read(&format!("deploy/debian/{script}"));
        assert!(text.contains("#DEBHELPER#"), "deploy/debian/{script} lacks #DEBHELPER#");
    }

    let unit = read("deploy/hostmedic.service");
    assert!(
        unit.lines()
            .any(|l| l == "ExecStart=/usr/bin/hostmedic --config /etc/hostmedic/hostmedic.toml serve"),
        "{unit}"
    );
    assert!(unit.lines().any(|l| l == "Type=notify"), "{unit}");
    assert!(unit.lines().any(|l| l == "StateDirectory=hostmedic"), "{unit}");
}

#[test]
fn every_unit_directive_is_explained_in_docs_deploy() {
    let unit = read("deploy/hostmedic.service");
    let doc = read("docs/deploy.md");
    for line in unit.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let key = line.split('=').next().expect("key");
        if ["Description", "Documentation"].contains(&key) {
            continue;
        }
        assert!(
            doc.contains(&format!("`{key}=")),
            "docs/deploy.md does not explain {key}= ({line})"
        );
    }
}
