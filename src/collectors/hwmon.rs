//! `hwmon` collector: CPU and board temperatures with their thresholds, read
//! from `<sysfs>/class/hwmon` (falling back to `<sysfs>/class/thermal`).
//!
//! sysinfo's component reader has a fixed sysfs path, so this is our own small
//! reader: a configurable root lets tests point it at a fake tree.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::collector::{CollectError, Collector};
use crate::metrics::MetricSet;

/// `[hwmon]` section: only `enabled`.
pub type Config = super::Switch;

pub struct HwmonCollector {
    sysfs: PathBuf,
}

impl HwmonCollector {
    pub fn new(sysfs_root: &Path) -> Self {
        HwmonCollector {
            sysfs: sysfs_root.to_path_buf(),
        }
    }
}

/// One temperature sensor as read from sysfs, in °C.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    pub source: &'static str,
    pub device: String,
    pub chip: String,
    pub sensor: String,
    pub label: String,
    pub celsius: f64,
    pub max: Option<f64>,
    pub crit: Option<f64>,
}

/// Reads a small sysfs attribute with exactly one `read(2)`: some drivers
/// answer EAGAIN forever, so there is no retry loop.
fn read_attr(path: &Path) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let mut buf = [0u8; 256];
    let n = f.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

fn read_millidegrees(path: &Path) -> Option<f64> {
    let v: f64 = read_attr(path)?.parse().ok()?;
    v.is_finite().then_some(v / 1000.0)
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Reads every hwmon temperature sensor under `<sysfs>/class/hwmon`.
/// A sensor whose `_input` is missing, unreadable or garbage is skipped.
pub fn read_hwmon(sysfs: &Path) -> Vec<Sensor> {
    let mut out = Vec::new();
    for dev in sorted_entries(&sysfs.join("class/hwmon")) {
        let device = dev
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Old drivers keep their attributes under device/.
        let dirs = [dev.clone(), dev.join("device")];
        let chip = dirs
            .iter()
            .find_map(|d| read_attr(&d.join("name")))
            .unwrap_or_else(|| device.clone());
        for dir in dirs {
            for entry in sorted_entries(&dir) {
                let Some(fname) = entry.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Some(sensor) = fname.strip_suffix("_input") else {
                    continue;
                };
                if !sensor.starts_with("temp") {
                    continue;
                }
                let Some(celsius) = read_millidegrees(&entry) else {
                    continue;
                };
                out.push(Sensor {
                    source: "hwmon",
                    device: device.clone(),
                    chip: chip.clone(),
                    sensor: sensor.to_string(),
                    label: read_attr(&dir.join(format!("{sensor}_label"))).unwrap_or_default(),
                    celsius,
                    max: read_millidegrees(&dir.join(format!("{sensor}_max"))),
                    crit: read_millidegrees(&dir.join(format!("{sensor}_crit"))),
                });
            }
        }
    }
    out
}

/// Reads `<sysfs>/class/thermal/thermal_zone*`: `temp`, `type`, and the
/// `hot`/`critical` trip points as max/crit.
pub fn read_thermal(sysfs: &Path) -> Vec<Sensor> {
    let mut out = Vec::new();
    for zone in sorted_entries(&sysfs.join("class/thermal")) {
        let device = zone
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !device.starts_with("thermal_zone") {
            continue;
        }
        let Some(celsius) = read_millidegrees(&zone.join("temp")) else {
            continue;
        };
        let (mut max, mut crit) = (None, None);
        for k in 0..32 {
            let Some(ty) = read_attr(&zone.join(format!("trip_point_{k}_type"))) else {
                break;
            };
            let t = read_millidegrees(&zone.join(format!("trip_point_{k}_temp")));
            match ty.as_str() {
                "critical" => crit = crit.or(t),
                "hot" => max = max.or(t),
                _ => {}
            }
        }
        out.push(Sensor {
            source: "thermal",
            chip: read_attr(&zone.join("type")).unwrap_or_else(|| device.clone()),
            device,
            sensor: "temp".into(),
            label: String::new(),
            celsius,
            max,
            crit,
        });
    }
    out
}

#[async_trait]
impl Collector for HwmonCollector {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let sysfs = self.sysfs.clone();
        let sensors = tokio::task::spawn_blocking(move || {
            let hw = read_hwmon(&sysfs);
            if hw.is_empty() { read_thermal(&sysfs) } else { hw }
        })
        .await
        .map_err(CollectError::failed)?;
        if sensors.is_empty() {
            return Err(CollectError::Unavailable(format!(
                "no temperature sensors under {}/class/hwmon or class/thermal",
                self.sysfs.display()
            )));
        }
        for s in &sensors {
            let l = [
                ("source", s.source),
                ("device", s.device.as_str()),
                ("chip", s.chip.as_str()),
                ("sensor", s.sensor.as_str()),
                ("label", s.label.as_str()),
            ];
            out.gauge(
                "hostmedic_hwmon_temp_celsius",
                "Current temperature of a sensor.",
                &l,
                s.celsius,
            );
            if let Some(v) = s.max {
                out.gauge(
                    "hostmedic_hwmon_temp_max_celsius",
                    "The sensor's high threshold as reported by the chip.",
                    &l,
                    v,
                );
            }
            if let Some(v) = s.crit {
                out.gauge(
                    "hostmedic_hwmon_temp_crit_celsius",
                    "The sensor's critical threshold as reported by the chip.",
                    &l,
                    v,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    #[test]
    fn reads_several_chips_and_skips_bad_sensors() {
        let t = tempfile::tempdir().unwrap();
        let h = t.path().join("class/hwmon");
        write(&h.join("hwmon0/name"), "coretemp\n");
        write(&h.join("hwmon0/temp1_input"), "87000\n");
        write(&h.join("hwmon0/temp1_label"), "Package id 0\n");
        write(&h.join("hwmon0/temp1_max"), "100000\n");
        write(&h.join("hwmon0/temp1_crit"), "105000\n");
        write(&h.join("hwmon0/temp2_input"), "garbage\n"); // skipped
        write(&h.join("hwmon0/temp3_label"), "no input\n"); // skipped
        write(&h.join("hwmon1/name"), "nvme\n");
        write(&h.join("hwmon1/temp1_input"), "41850\n"); // no label, no thresholds
        // attributes under device/ (old drivers)
        write(&h.join("hwmon2/device/name"), "k10temp\n");
        write(&h.join("hwmon2/device/temp1_input"), "-5000\n");
        let s = read_hwmon(t.path());
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0].chip, "coretemp");
        assert_eq!(s[0].label, "Package id 0");
        assert_eq!((s[0].celsius, s[0].max, s[0].crit), (87.0, Some(100.0), Some(105.0)));
        assert_eq!((s[1].chip.as_str(), s[1].celsius, s[1].max), ("nvme", 41.85, None));
        assert_eq!((s[2].chip.as_str(), s[2].celsius), ("k10temp", -5.0));
    }

    #[test]
    fn unreadable_file_is_skipped() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("class/hwmon/hwmon0");
        write(&d.join("name"), "acpitz");
        write(&d.join("temp1_input"), "50000");
        // A directory where a file should be: read() fails with EISDIR,
        // even for root (who ignores permission bits).
        fs::create_dir_all(d.join("temp2_input")).unwrap();
        write(&d.join("temp3_input"), "51000");
        fs::set_permissions(d.join("temp3_input"), fs::Permissions::from_mode(0o000)).unwrap();
        let s = read_hwmon(t.path());
        assert!(s.iter().any(|x| x.sensor == "temp1"));
        assert!(!s.iter().any(|x| x.sensor == "temp2"));
    }

    #[tokio::test]
    async fn falls_back_to_thermal_zones_then_reports_absence() {
        let t = tempfile::tempdir().unwrap();
        let z = t.path().join("class/thermal/thermal_zone0");
        write(&z.join("type"), "x86_pkg_temp");
        write(&z.join("temp"), "90000");
        write(&z.join("trip_point_0_type"), "passive");
        write(&z.join("trip_point_0_temp"), "80000");
        write(&z.join("trip_point_1_type"), "critical");
        write(&z.join("trip_point_1_temp"), "105000");
        write(&t.path().join("class/thermal/cooling_device0/type"), "fan");
        let c = HwmonCollector::new(t.path());
        let mut m = MetricSet::new();
        c.collect(&mut m).await.unwrap();
        let l = [("source", "thermal"), ("chip", "x86_pkg_temp")];
        assert_eq!(m.value("hostmedic_hwmon_temp_celsius", &l), Some(90.0));
        assert_eq!(m.value("hostmedic_hwmon_temp_crit_celsius", &l), Some(105.0));
        assert_eq!(m.value("hostmedic_hwmon_temp_max_celsius", &l), None);

        let empty = tempfile::tempdir().unwrap();
        let c = HwmonCollector::new(empty.path());
        let err = c.collect(&mut MetricSet::new()).await.unwrap_err();
        assert!(matches!(err, CollectError::Unavailable(_)), "{err}");
    }
}
