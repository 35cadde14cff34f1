#!/usr/bin/env python3
"""Generates hostmedic's Grafana dashboards (grafana/dashboards/*.json).

The JSON files are committed and importable as they are; this script is how
they are maintained (edit here, run `python3 grafana/generate.py`, commit
both). tests/dashboards.rs checks the committed files match its output and
runs every panel query against a real Prometheus; tests/dashboards_full.rs
requires data from every one of them with every source present.

Every dashboard has a `datasource` variable (type prometheus) and a `host`
variable (multi-select on the `instance` label, "All" = `.*`), so one set of
dashboards serves one host or a fleet. Metric names follow docs/metrics.md.
"""

import json
import os
import sys

H = 'instance=~"$host"'
# The firing-alert counts leave info-level facts out (HostmedicNoSwap on a
# healthy host without swap must not keep a stat red).
NOT_INFO = "No value: nothing is firing. Info-level facts (severity info, e.g. HostmedicNoSwap) are not counted."
DS = {"type": "prometheus", "uid": "${datasource}"}
HERE = os.path.dirname(os.path.abspath(__file__))


def templating():
    return {
        "list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "includeAll": False,
                "multi": False,
                "options": [],
                "refresh": 1,
                "regex": "",
                "skipUrlSync": False,
            },
            {
                "name": "host",
                "label": "Host",
                "type": "query",
                "datasource": DS,
                "definition": "label_values(hostmedic_build_info, instance)",
                "query": {
                    "query": "label_values(hostmedic_build_info, instance)",
                    "refId": "PrometheusVariableQueryEditor-VariableQuery",
                },
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "hide": 0,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "options": [],
                "refresh": 2,
                "regex": "",
                "skipUrlSync": False,
                "sort": 1,
            },
        ]
    }


class Layout:
    """Places panels left to right in rows of 24 grid units."""

    def __init__(self):
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1
        self.panels = []

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)

    def row(self, title):
        if self.x:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x = 0
        self.y += 1
        self.row_h = 0


def target(expr, legend="", ref="A", instant=False, table=False):
    t = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend, "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def refs(targets):
    out = []
    for i, t in enumerate(targets):
        t = dict(t)
        t["refId"] = chr(ord("A") + i)
        out.append(t)
    return out


def thresholds(steps):
    return {
        "mode": "absolute",
        "steps": [{"color": c, "value": v} for v, c in steps],
    }


GREEN = [(None, "green")]


def timeseries(title, targets, unit="short", desc="", steps=None, min_=None, max_=None, stack=False):
    defaults = {
        "unit": unit,
        "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": False},
        "thresholds": thresholds(steps or GREEN),
    }
    if stack:
        defaults["custom"]["stacking"] = {"mode": "normal", "group": "A"}
    if steps:
        defaults["custom"]["thresholdsStyle"] = {"mode": "line"}
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": refs(targets),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title, expr, unit="short", steps=None, desc="", legend="{{instance}}"):
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": refs([target(expr, legend, instant=True)]),
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": thresholds(steps or GREEN), "mappings": []}, "overrides": []},
        "options": {
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        },
    }


def bargauge(title, expr, legend, unit="short", steps=None, desc="", max_=None):
    defaults = {"unit": unit, "thresholds": thresholds(steps or GREEN), "min": 0}
    if max_ is not None:
        defaults["max"] = max_
    return {
        "type": "bargauge",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": refs([target(expr, legend, instant=True)]),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
        },
    }


def table(title, columns, keep, sort=None, desc="", units=None):
    """A table of instant queries merged on their labels.

    columns: [(column title, expr)]; keep: label columns to show, in order.
    """
    targets = refs([target(expr, "", instant=True, table=True) for _, expr in columns])
    rename = {}
    order = {}
    for i, label in enumerate(keep):
        order[label] = i
    if len(columns) == 1:
        rename["Value"] = columns[0][0]
        order["Value"] = len(keep)
    else:
        for i, (name, _) in enumerate(columns):
            rename["Value #" + chr(ord("A") + i)] = name
            order["Value #" + chr(ord("A") + i)] = len(keep) + i
    exclude = {"Time": True, "__name__": True, "job": True}
    transformations = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {"excludeByName": exclude, "indexByName": order, "renameByName": rename, "includeByName": {}},
        },
    ]
    if sort:
        transformations.append({"id": "sortBy", "options": {"fields": {}, "sort": [{"field": sort, "desc": True}]}})
    overrides = []
    for col, unit in (units or {}).items():
        overrides.append({"matcher": {"id": "byName", "options": col}, "properties": [{"id": "unit", "value": unit}]})
    return {
        "type": "table",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": targets,
        "transformations": transformations,
        "fieldConfig": {"defaults": {"custom": {"align": "auto", "filterable": True}}, "overrides": overrides},
        "options": {"showHeader": True, "footer": {"show": False}},
    }


def dashboard(uid, title, desc, layout):
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["hostmedic"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "datasource": DS,
                    "enable": True,
                    "expr": 'ALERTS{alertstate="firing", alertname=~"Hostmedic.*", %s}' % H,
                    "iconColor": "red",
                    "name": "hostmedic alerts",
                    "step": "60s",
                    "titleFormat": "{{alertname}}",
                    "textFormat": "{{instance}}",
                    "useValueForTime": False,
                },
            ]
        },
        "links": [
            {
                "title": "hostmedic dashboards",
                "type": "dashboards",
                "tags": ["hostmedic"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": templating(),
        "panels": layout.panels,
    }


def host_overview():
    l = Layout()
    l.row("Overview")
    l.add(stat("Load per CPU (1m)", f"hostmedic_host_load1{{{H}}} / hostmedic_host_cpus{{{H}}}", "short",
               [(None, "green"), (1, "yellow"), (2, "red")]), 4, 4)
    l.add(stat("Memory available", f"hostmedic_host_memory_available_bytes{{{H}}} / hostmedic_host_memory_total_bytes{{{H}}}",
               "percentunit", [(None, "red"), (0.1, "yellow"), (0.2, "green")]), 4, 4)
    l.add(stat("Fullest filesystem",
               f"max by (instance) (1 - hostmedic_host_filesystem_avail_bytes{{{H}}} / hostmedic_host_filesystem_size_bytes{{{H}}})",
               "percentunit", [(None, "green"), (0.75, "yellow"), (0.85, "red")]), 4, 4)
    l.add(stat("Swap", f"hostmedic_host_swap_total_bytes{{{H}}}", "bytes", [(None, "orange"), (1, "green")],
               desc="0 means no swap (HostmedicNoSwap)."), 4, 4)
    l.add(stat("Hottest sensor", f"max by (instance) (hostmedic_hwmon_temp_celsius{{{H}}})", "celsius",
               [(None, "green"), (75, "yellow"), (85, "red")]), 4, 4)
    l.add(stat("Firing alerts", f'count by (instance) (ALERTS{{alertstate="firing", severity!="info", {H}}})', "short",
               [(None, "green"), (1, "red")], desc=NOT_INFO), 4, 4)

    l.row("Temperatures")
    l.add(timeseries("Temperatures", [
        target(f"hostmedic_hwmon_temp_celsius{{{H}}}", "{{instance}} {{chip}} {{sensor}} {{label}}"),
    ], "celsius", "Every sensor; thresholds on the right."), 12, 8)
    l.add(table("Sensors and their thresholds", [
        ("Temperature", f"hostmedic_hwmon_temp_celsius{{{H}}}"),
        ("Max", f"hostmedic_hwmon_temp_max_celsius{{{H}}}"),
        ("Crit", f"hostmedic_hwmon_temp_crit_celsius{{{H}}}"),
    ], ["instance", "chip", "sensor", "label", "device", "source"], sort="Temperature",
        desc="Max/Crit are empty when the chip reports none: the fallback (hostmedic:hwmon_temp_fallback_celsius) applies.",
        units={"Temperature": "celsius", "Max": "celsius", "Crit": "celsius"}), 12, 8)

    l.row("Load")
    l.add(timeseries("Load per CPU", [
        target(f"hostmedic_host_load1{{{H}}} / hostmedic_host_cpus{{{H}}}", "{{instance}} 1m"),
        target(f"hostmedic_host_load5{{{H}}} / hostmedic_host_cpus{{{H}}}", "{{instance}} 5m"),
        target(f"hostmedic_host_load15{{{H}}} / hostmedic_host_cpus{{{H}}}", "{{instance}} 15m"),
    ], "short", "HostmedicHighLoadPerCpu fires above 2 for 10 minutes.", [(None, "green"), (2, "red")], min_=0), 12, 8)
    l.add(timeseries("Load average and CPUs", [
        target(f"hostmedic_host_load1{{{H}}}", "{{instance}} load1"),
        target(f"hostmedic_host_load5{{{H}}}", "{{instance}} load5"),
        target(f"hostmedic_host_load15{{{H}}}", "{{instance}} load15"),
        target(f"hostmedic_host_cpus{{{H}}}", "{{instance}} CPUs"),
    ], "short", min_=0), 12, 8)

    l.row("Memory and swap")
    l.add(timeseries("Memory", [
        target(f"hostmedic_host_memory_total_bytes{{{H}}}", "{{instance}} total"),
        target(f"hostmedic_host_memory_total_bytes{{{H}}} - hostmedic_host_memory_available_bytes{{{H}}}", "{{instance}} used"),
        target(f"hostmedic_host_memory_available_bytes{{{H}}}", "{{instance}} available"),
    ], "bytes", min_=0), 8, 8)
    l.add(timeseries("Memory available", [
        target(f"hostmedic_host_memory_available_bytes{{{H}}} / hostmedic_host_memory_total_bytes{{{H}}}", "{{instance}}"),
    ], "percentunit", "HostmedicMemoryAvailableLow fires under 10% for 5 minutes.", [(None, "red"), (0.1, "green")], 0, 1), 8, 8)
    l.add(timeseries("Swap", [
        target(f"hostmedic_host_swap_total_bytes{{{H}}}", "{{instance}} total"),
        target(f"hostmedic_host_swap_total_bytes{{{H}}} - hostmedic_host_swap_free_bytes{{{H}}}", "{{instance}} used"),
    ], "bytes", min_=0), 8, 8)

    l.row("Disk")
    l.add(bargauge("Filesystem usage",
                   f"1 - hostmedic_host_filesystem_avail_bytes{{{H}}} / hostmedic_host_filesystem_size_bytes{{{H}}}",
                   "{{instance}} {{mountpoint}}", "percentunit", [(None, "green"), (0.75, "yellow"), (0.85, "red")],
                   "HostmedicDiskAlmostFull fires above 85% for 5 minutes.", 1), 12, 8)
    l.add(timeseries("Filesystem space available", [
        target(f"hostmedic_host_filesystem_avail_bytes{{{H}}}", "{{instance}} {{mountpoint}}"),
    ], "bytes", min_=0), 12, 8)

    l.row("hostmedic")
    l.add(timeseries("Collector success", [
        target(f"hostmedic_scrape_collector_success{{{H}}}", "{{instance}} {{collector}}"),
    ], "short", "1 ok, 0 failed or source absent.", min_=0, max_=1), 8, 7)
    l.add(timeseries("Collector duration", [
        target(f"hostmedic_scrape_collector_duration_seconds{{{H}}}", "{{instance}} {{collector}}"),
    ], "s", min_=0), 8, 7)
    l.add(table("Collectors", [
        ("Success", f"hostmedic_scrape_collector_success{{{H}}}"),
        ("Source present", f"hostmedic_collector_source_present{{{H}}}"),
    ], ["instance", "collector"]), 8, 7)
    return dashboard("hostmedic-host", "hostmedic / Host overview",
                     "Temperatures, load, memory, swap and disk per host.", l)


def units():
    l = Layout()
    l.row("Units")
    l.add(stat("Failed units", f'count by (instance) (hostmedic_systemd_unit_state{{state="failed", {H}}} == 1)', "short",
               [(None, "red")], desc="No value: no failed unit."), 6, 4)
    l.add(stat("systemd managers up", f"hostmedic_systemd_manager_up{{{H}}}", "short", [(None, "red"), (1, "green")],
               legend="{{instance}} {{manager}}"), 6, 4)
    l.add(timeseries("Units by state", [
        target(f"hostmedic_systemd_units{{{H}}}", "{{instance}} {{manager}} {{state}}"),
    ], "short", min_=0), 12, 8)
    l.add(table("Failed units", [
        ("Failed", f'hostmedic_systemd_unit_state{{state="failed", {H}}} == 1'),
    ], ["instance", "manager", "name", "type"]), 12, 8)
    l.add(table("Unit details (not active)", [
        ("Info", f"hostmedic_systemd_unit_info{{{H}}} and on (instance, manager, name) (hostmedic_systemd_unit_state{{state!=\"active\", {H}}} == 1)"),
    ], ["instance", "manager", "name", "type", "load_state", "sub_state", "result"]), 12, 8)

    l.row("Restarts")
    l.add(timeseries("Service restarts per minute", [
        target(f"rate(hostmedic_systemd_service_restarts_total{{{H}}}[$__rate_interval]) * 60", "{{instance}} {{name}}"),
    ], "short", "HostmedicUnitCrashLooping fires above 0.5/min for 5 minutes.", [(None, "green"), (0.5, "red")], min_=0), 12, 8)
    l.add(table("Services by restarts (NRestarts), last exit status", [
        ("Restarts", f"topk(20, hostmedic_systemd_service_restarts_total{{{H}}})"),
        ("Exit status", f"hostmedic_systemd_service_exec_main_status{{{H}}} and on (instance, manager, name) topk(20, hostmedic_systemd_service_restarts_total{{{H}}})"),
    ], ["instance", "manager", "name"], sort="Restarts"), 12, 8)

    l.row("Expected units")
    l.add(table("Expected units", [
        ("Installed", f"hostmedic_systemd_expected_unit_present{{{H}}}"),
        ("Active", f"hostmedic_systemd_expected_unit_active{{{H}}}"),
        ("Active since", f"hostmedic_systemd_unit_active_enter_timestamp_seconds{{{H}}} * 1000 and on (instance, manager, name) hostmedic_systemd_expected_unit_present{{{H}}}"),
    ], ["instance", "manager", "name"], units={"Active since": "dateTimeAsIso"}), 24, 8)

    l.row("Timers")
    l.add(table("Timers", [
        ("Last trigger", f"hostmedic_systemd_timer_last_trigger_timestamp_seconds{{{H}}} * 1000"),
        ("Next elapse", f"hostmedic_systemd_timer_next_elapse_timestamp_seconds{{{H}}} * 1000"),
        ("Service failed", f"hostmedic_systemd_timer_unit_failed{{{H}}}"),
    ], ["instance", "manager", "timer", "unit"], sort="Service failed",
        units={"Last trigger": "dateTimeAsIso", "Next elapse": "dateTimeAsIso"}), 16, 8)
    l.add(timeseries("Timer services failing", [
        target(f"hostmedic_systemd_timer_unit_failed{{{H}}}", "{{instance}} {{timer}}"),
    ], "short", min_=0, max_=1), 8, 8)
    return dashboard("hostmedic-units", "hostmedic / systemd units",
                     "Unit states, failed units, crash loops, expected units and timers.", l)


def containers():
    l = Layout()
    l.row("Containers")
    l.add(stat("Running", f'count by (instance) (hostmedic_docker_container_state{{state="running", {H}}} == 1)'), 6, 4)
    l.add(stat("Unhealthy", f'count by (instance) (hostmedic_docker_container_health{{health="unhealthy", {H}}} == 1)',
               steps=[(None, "red")], desc="No value: none unhealthy."), 6, 4)
    l.add(stat("OOM-killed", f"count by (instance) (hostmedic_docker_container_oom_killed{{{H}}} == 1)",
               steps=[(None, "red")], desc="No value: none."), 6, 4)
    l.add(stat("Docker engine", f"hostmedic_docker_info{{{H}}}", legend="{{instance}} {{version}}"), 6, 4)
    l.add(table("Containers", [
        ("Info", f"hostmedic_docker_container_info{{{H}}}"),
    ], ["instance", "container", "image", "compose_project", "compose_service", "id"]), 12, 8)
    l.add(table("State, health, restart policy", [
        ("State", f"hostmedic_docker_container_state{{{H}}} == 1"),
        ("Health", f"hostmedic_docker_container_health{{{H}}} == 1"),
        ("Policy", f"hostmedic_docker_container_restart_policy{{{H}}}"),
    ], ["instance", "container", "state", "health", "policy"]), 12, 8)

    l.row("Health and restarts")
    l.add(timeseries("Health check failing streak", [
        target(f"hostmedic_docker_container_health_failing_streak{{{H}}}", "{{instance}} {{container}}"),
    ], "short", min_=0), 8, 8)
    l.add(timeseries("Restarts in the last 10 minutes", [
        target(f"increase(hostmedic_docker_container_restarts_total{{{H}}}[10m])", "{{instance}} {{container}}"),
    ], "short", "HostmedicContainerRestartLoop fires at 3.", [(None, "green"), (3, "red")], min_=0), 8, 8)
    l.add(table("OOM kills and exit codes", [
        ("OOM killed", f"hostmedic_docker_container_oom_killed{{{H}}}"),
        ("Exit code", f"hostmedic_docker_container_exit_code{{{H}}}"),
        ("Finished", f"hostmedic_docker_container_finished_timestamp_seconds{{{H}}} * 1000"),
        ("Started", f"hostmedic_docker_container_started_timestamp_seconds{{{H}}} * 1000"),
    ], ["instance", "container"], sort="OOM killed", units={"Finished": "dateTimeAsIso", "Started": "dateTimeAsIso"}), 8, 8)

    l.row("Memory")
    l.add(timeseries("Memory used / limit", [
        target(f"hostmedic_docker_container_memory_usage_bytes{{{H}}} / hostmedic_docker_container_memory_limit_bytes{{{H}}}",
               "{{instance}} {{container}}"),
    ], "percentunit", "HostmedicContainerMemoryNearLimit fires at 80% for 5 minutes; containers without a limit are not shown.",
        [(None, "green"), (0.8, "red")], 0, 1), 12, 8)
    l.add(timeseries("Memory usage and limit", [
        target(f"hostmedic_docker_container_memory_usage_bytes{{{H}}}", "{{instance}} {{container}} used"),
        target(f"hostmedic_docker_container_memory_limit_bytes{{{H}}}", "{{instance}} {{container}} limit"),
    ], "bytes", min_=0), 12, 8)
    return dashboard("hostmedic-containers", "hostmedic / Containers",
                     "Container state, health, restarts, OOM kills and memory against limits.", l)


def files():
    l = Layout()
    l.row("Git LFS")
    l.add(table("Repositories", [
        ("Objects", f"hostmedic_git_lfs_objects{{{H}}}"),
        ("Store size", f"hostmedic_git_lfs_objects_bytes{{{H}}}"),
        ("Largest object", f"hostmedic_git_lfs_largest_object_bytes{{{H}}}"),
        ("Limit", f"hostmedic_git_lfs_object_size_limit_bytes{{{H}}}"),
        ("Over limit", f"hostmedic_git_lfs_objects_over_limit{{{H}}}"),
        ("Pointers without object", f"hostmedic_git_lfs_pointers_missing_object{{{H}}}"),
        ("Scan age", f"time() - hostmedic_git_lfs_scan_timestamp_seconds{{{H}}}"),
    ], ["instance", "repo"], sort="Over limit",
        units={"Store size": "bytes", "Largest object": "bytes", "Limit": "bytes", "Scan age": "s"}), 24, 8)
    l.add(table("Objects over the size limit", [
        ("Size", f"hostmedic_git_lfs_object_over_limit_bytes{{{H}}}"),
    ], ["instance", "repo", "path", "oid"], sort="Size", units={"Size": "bytes"}), 12, 8)
    l.add(table("Repositories that cannot be scanned", [
        ("Up", f"hostmedic_git_lfs_repo_up{{{H}}} == 0"),
    ], ["instance", "repo", "error"]), 12, 8)
    l.add(timeseries("LFS store size", [
        target(f"hostmedic_git_lfs_objects_bytes{{{H}}}", "{{instance}} {{repo}}"),
    ], "bytes", min_=0), 12, 8)
    l.add(timeseries("Largest object / limit", [
        target(f"hostmedic_git_lfs_largest_object_bytes{{{H}}} / hostmedic_git_lfs_object_size_limit_bytes{{{H}}}",
               "{{instance}} {{repo}}"),
    ], "percentunit", "Above 100% a push is rejected (HostmedicLfsObjectOverLimit).", [(None, "green"), (1, "red")], min_=0), 12, 8)

    l.row("Watched paths")
    l.add(timeseries("Size", [
        target(f"hostmedic_path_size_bytes{{{H}}}", "{{instance}} {{watch}} {{path}}"),
    ], "bytes", min_=0), 12, 8)
    l.add(timeseries("Size / limit", [
        target(f"hostmedic_path_size_bytes{{{H}}} / hostmedic_path_size_limit_bytes{{{H}}}", "{{instance}} {{watch}} {{path}}"),
    ], "percentunit", "HostmedicWatchedFileOverSize fires above 100% for 5 minutes.", [(None, "green"), (1, "red")], min_=0), 12, 8)
    l.add(table("Paths", [
        ("Exists", f"hostmedic_path_exists{{{H}}}"),
        ("Size", f"hostmedic_path_size_bytes{{{H}}}"),
        ("Limit", f"hostmedic_path_size_limit_bytes{{{H}}}"),
        ("Modified", f"hostmedic_path_modified_timestamp_seconds{{{H}}} * 1000"),
    ], ["instance", "watch", "path"], sort="Size", units={"Size": "bytes", "Limit": "bytes", "Modified": "dateTimeAsIso"}), 24, 8)
    return dashboard("hostmedic-files", "hostmedic / Git LFS and file sizes",
                     "Git LFS repositories against the remote's object size limit, and watched file sizes.", l)


def processes():
    l = Layout()
    l.row("Processes")
    l.add(table("Top CPU processes", [
        ("CPU", f"topk(10, hostmedic_process_top_cpu_usage_ratio{{{H}}})"),
        ("Running for", f"time() - hostmedic_process_top_start_time_seconds{{{H}}} and on (instance, pid) topk(10, hostmedic_process_top_cpu_usage_ratio{{{H}}})"),
    ], ["instance", "pid", "comm", "user", "cmdline"], sort="CPU", units={"CPU": "percentunit", "Running for": "s"}), 24, 8)
    l.add(timeseries("Top CPU processes over time", [
        target(f"hostmedic_process_top_cpu_usage_ratio{{{H}}}", "{{instance}} {{pid}} {{comm}}"),
    ], "percentunit", "HostmedicRunawayProcess fires at 90% of a CPU for 30 minutes.", [(None, "green"), (0.9, "red")], min_=0), 12, 8)
    l.add(table("Process watches", [
        ("Count", f"hostmedic_process_watch_processes{{{H}}}"),
        ("Min", f"hostmedic_process_watch_min{{{H}}}"),
        ("Max", f"hostmedic_process_watch_max{{{H}}}"),
        ("Memory", f"hostmedic_process_watch_resident_memory_bytes{{{H}}}"),
        ("Oldest running for", f"time() - hostmedic_process_watch_oldest_start_time_seconds{{{H}}}"),
    ], ["instance", "watch"], units={"Memory": "bytes", "Oldest running for": "s"}), 12, 8)
    l.add(timeseries("Watched process count", [
        target(f"hostmedic_process_watch_processes{{{H}}}", "{{instance}} {{watch}}"),
    ], "short", min_=0), 12, 8)
    l.add(timeseries("Watched process CPU", [
        target(f"rate(hostmedic_process_watch_cpu_seconds_total{{{H}}}[$__rate_interval])", "{{instance}} {{watch}}"),
    ], "percentunit", min_=0), 12, 8)

    l.row("Logs and probes")
    l.add(timeseries("Error pattern matches per minute", [
        target(f"rate(hostmedic_logfile_matched_lines_total{{{H}}}[$__rate_interval]) * 60", "{{instance}} {{file}} {{pattern}}"),
    ], "short", min_=0), 12, 8)
    l.add(table("Log files", [
        ("Readable", f"hostmedic_logfile_readable{{{H}}}"),
    ], ["instance", "file"]), 12, 8)
    l.add(table("Probes", [
        ("Success", f"hostmedic_probe_success{{{H}}}"),
        ("HTTP status", f"hostmedic_probe_status_code{{{H}}}"),
        ("Exit code", f"hostmedic_probe_exit_code{{{H}}}"),
        ("Certificate expires in", f"hostmedic_probe_tls_cert_not_after_timestamp_seconds{{{H}}} - time()"),
    ], ["instance", "probe", "kind"], desc="Certificate expiry: https probes only; HostmedicProbeCertExpiringSoon fires under 14 days.",
        units={"Certificate expires in": "s"}), 12, 8)
    l.add(timeseries("Probe duration", [
        target(f"hostmedic_probe_duration_seconds{{{H}}}", "{{instance}} {{probe}}"),
    ], "s", min_=0), 12, 8)
    return dashboard("hostmedic-processes", "hostmedic / Processes, logs and probes",
                     "Top CPU processes, process watches, log error patterns and probes.", l)


def resources():
    units_ = f'name!~".*[.]slice", {H}'
    ri = "[$__rate_interval]"
    l = Layout()
    l.row("Host pressure (PSI)")
    for res, title, limit, alert in [
        ("cpu", "CPU pressure", 0.5, "HostmedicCpuPressureHigh fires above 50% (some, 60s) for 10 minutes."),
        ("memory", "Memory pressure", 0.2, "HostmedicMemoryPressureHigh fires above 20% (some, 60s) for 5 minutes."),
        ("io", "I/O pressure", 0.5, "HostmedicIoPressureHigh fires above 50% (some, 60s) for 10 minutes."),
    ]:
        l.add(timeseries(title, [
            target(f'hostmedic_host_pressure_ratio{{resource="{res}", window="60s", {H}}}', "{{instance}} {{kind}}"),
        ], "percentunit", "Share of time some (or all: full) tasks waited for the resource, kernel 60-second average. " + alert,
            [(None, "green"), (limit, "red")], 0, 1), 8, 8)
    l.add(timeseries("Stall time per second", [
        target(f"rate(hostmedic_host_pressure_stalled_seconds_total{{{H}}}{ri})", "{{instance}} {{resource}} {{kind}}"),
    ], "percentunit", "The same share from the stall counters, averaged over Prometheus' own window.", min_=0), 24, 8)

    for kind, prefix, sel, legend, note in [
        ("units", "hostmedic_systemd_unit", units_, "{{instance}} {{manager}} {{name}}", "; slices left out, they sum their units"),
        ("containers", "hostmedic_docker_container", H, "{{instance}} {{container}}", ""),
    ]:
        memory = "memory_current_bytes" if kind == "units" else "memory_usage_bytes"
        l.row(kind.capitalize())
        l.add(timeseries(f"Top {kind} by CPU", [
            target(f"topk(5, rate({prefix}_cpu_seconds_total{{{sel}}}{ri}))", legend),
        ], "percentunit", f"CPU of the five busiest {kind} at each point (1 = one full CPU){note}.", min_=0), 12, 8)
        l.add(timeseries(f"Top {kind} by memory", [
            target(f"topk(5, {prefix}_{memory}{{{sel}}})", legend),
        ], "bytes", f"cgroup memory of the five largest {kind} at each point.", min_=0), 12, 8)
        l.add(timeseries(f"Top {kind} by I/O", [
            target(f"topk(5, rate({prefix}_io_read_bytes_total{{{sel}}}{ri}) + rate({prefix}_io_written_bytes_total{{{sel}}}{ri}))",
                   legend),
        ], "Bps", "Bytes read plus written per second.", min_=0), 12, 8)
        l.add(timeseries(f"Top {kind} by pressure stall", [
            target(f'topk(5, rate({prefix}_pressure_stalled_seconds_total{{kind="some", {sel}}}{ri}))', legend + " {{resource}}"),
        ], "percentunit", "Share of time some task inside waited for CPU, memory or I/O.", min_=0), 12, 8)
        if kind == "units":
            busiest = f"topk(20, rate({prefix}_cpu_seconds_total{{{sel}}}[5m]))"
            l.add(table("Units by CPU now", [
                ("CPU", busiest),
                ("Memory", f"{prefix}_memory_current_bytes{{{sel}}} and on (instance, manager, name) {busiest}"),
                ("Memory peak", f"{prefix}_memory_peak_bytes{{{sel}}} and on (instance, manager, name) {busiest}"),
                ("Tasks", f"{prefix}_tasks{{{sel}}} and on (instance, manager, name) {busiest}"),
            ], ["instance", "manager", "name"], sort="CPU", desc="The 20 busiest units over the last 5 minutes.",
                units={"CPU": "percentunit", "Memory": "bytes", "Memory peak": "bytes"}), 24, 8)
    return dashboard("hostmedic-resources", "hostmedic / Resources and pressure",
                     "Host pressure stall information and the units and containers that use the most CPU, memory and I/O.", l)


def remediation():
    l = Layout()
    l.row("Alerts")
    l.add(stat("Holds active", f"hostmedic_remediation_holds_active{{{H}}}", steps=[(None, "green"), (1, "red")],
               desc="Targets hostmedic stopped acting on after their budget was spent."), 6, 4)
    l.add(stat("Alerts firing", f'count by (instance) (ALERTS{{alertstate="firing", severity!="info", {H}}})', steps=[(None, "green"), (1, "red")],
               desc=NOT_INFO), 6, 4)
    l.add(timeseries("Alerts received per minute", [
        target(f"sum by (instance, status) (rate(hostmedic_alerts_received_total{{{H}}}[$__rate_interval])) * 60", "{{instance}} {{status}}"),
    ], "short", min_=0), 12, 8)
    l.add(table("Firing alerts", [
        ("Firing", f'ALERTS{{alertstate="firing", {H}}}'),
    ], ["instance", "alertname", "severity", "unit", "timer", "container", "pid", "comm", "repo", "watch", "probe", "mountpoint", "collector"]), 12, 8)
    l.add(timeseries("Webhook requests per minute", [
        target(f"sum by (instance, code) (rate(hostmedic_webhook_requests_total{{{H}}}[$__rate_interval])) * 60", "{{instance}} {{code}}"),
    ], "short", min_=0), 12, 8)

    l.row("Actions")
    l.add(timeseries("Actions by result", [
        target(f"sum by (instance, action, result) (increase(hostmedic_actions_total{{{H}}}[$__rate_interval]))", "{{instance}} {{action}} {{result}}"),
    ], "short", min_=0, stack=True), 12, 8)
    l.add(table("Actions in the time range", [
        ("Count", f"sum by (instance, action, result) (increase(hostmedic_actions_total{{{H}}}[$__range]))"),
    ], ["instance", "action", "result"], sort="Count"), 12, 8)
    l.add(timeseries("Skipped actions by reason", [
        target(f"sum by (instance, reason) (increase(hostmedic_actions_skipped_total{{{H}}}[$__rate_interval]))", "{{instance}} {{reason}}"),
    ], "short", min_=0, stack=True), 12, 8)
    l.add(timeseries("Action duration (p90)", [
        target(f"histogram_quantile(0.9, sum by (instance, action, le) (rate(hostmedic_action_duration_seconds_bucket{{{H}}}[$__rate_interval])))",
               "{{instance}} {{action}}"),
    ], "s", min_=0), 12, 8)

    l.row("Holds")
    l.add(table("Held targets", [
        ("Held", f"hostmedic_remediation_hold{{{H}}}"),
    ], ["instance", "rule", "target"]), 24, 6)

    l.row("Latency")
    l.add(timeseries("Fault to verified remediation (total)", latency_quantiles('stage="total", ', "{{instance}}"), "s", min_=0,
        desc="From the alert's startsAt (Prometheus' clock, after the rule's for:) to the remediation verified; "
             "only runs that succeeded for real. No value: nothing was remediated in the window."), 12, 8)
    l.add(timeseries("Remediation latency by stage", latency_quantiles('stage!="total", ', "{{instance}} {{stage}}"), "s", min_=0,
        desc="Where the seconds go: alert_to_delivery (Alertmanager grouping), delivery_to_decision, "
             "decision_to_action_start, action, verification (docs/metrics.md)."), 12, 8)

    l.row("Alert pipeline")
    l.add(stat("Pipeline silent", f"hostmedic_pipeline_silent{{{H}}}", steps=[(None, "green"), (1, "red")],
               desc="1: no heartbeat (the always-firing HostmedicWatchdog alert) arrived within receiver.heartbeat.max_silence; "
                    "Prometheus or Alertmanager is down or cannot reach hostmedic."), 6, 8)
    l.add(stat("Last heartbeat age", heartbeat_age(), "s", steps=[(None, "green"), (150, "yellow"), (300, "red")],
               desc="Seconds since Alertmanager last delivered the heartbeat. No value: none since the state was created."),
          6, 8)
    l.add(timeseries("Heartbeat age", [
        target(heartbeat_age(), "{{instance}}"),
    ], "s", min_=0, steps=[(None, "green"), (300, "red")],
        desc="Saw-tooth of the heartbeat route's repeat_interval; the red line is the default max_silence (5m)."), 12, 8)
    return dashboard("hostmedic-remediation", "hostmedic / Remediation",
                     "Alerts received, actions taken and their results, skips, holds, "
                     "remediation latency and the alert pipeline's heartbeat.", l)


def latency_quantiles(matchers, legend):
    """p50 and p90 of hostmedic_remediation_latency_seconds by instance and stage, over the rate of its buckets.

    matchers: extra label matchers with a trailing ', '; legend: the legend before " p50"/" p90".
    """
    return [
        target(f"histogram_quantile({q}, sum by (instance, stage, le) "
               f"(rate(hostmedic_remediation_latency_seconds_bucket{{{matchers}{H}}}[$__rate_interval])))",
               f"{legend} p{round(q * 100)}")
        for q in (0.5, 0.9)
    ]


def heartbeat_age():
    """Seconds since the last heartbeat; none while no heartbeat ever arrived (the gauge is 0 then)."""
    return f"time() - (hostmedic_pipeline_heartbeat_last_timestamp_seconds{{{H}}} > 0)"


def fleet():
    up = f'up{{job=~"hostmedic.*", {H}}}'
    score = (
        "sum by (instance) (\n"
        f'  label_replace(100 * (1 - {up}), "part", "down", "", "")\n'
        f'  or label_replace(10 * count by (instance) (ALERTS{{alertstate="firing", severity="critical", {H}}}), "part", "critical", "", "")\n'
        f'  or label_replace(count by (instance) (ALERTS{{alertstate="firing", severity!~"critical|info", {H}}}), "part", "other", "", "")\n'
        ")"
    )
    l = Layout()
    l.row("Fleet")
    l.add(stat("Hosts up", f'count(up{{job=~"hostmedic.*", {H}}} == 1)', legend="up"), 4, 4)
    l.add(stat("Hosts down", f'count(up{{job=~"hostmedic.*", {H}}} == 0)', steps=[(None, "red")], legend="down",
               desc="No value: every host is up."), 4, 4)
    l.add(stat("Alerts firing", f'count(ALERTS{{alertstate="firing", severity!="info", {H}}})', steps=[(None, "green"), (1, "red")], legend="firing",
               desc=NOT_INFO), 4, 4)
    l.add(stat("Holds active", f"sum(hostmedic_remediation_holds_active{{{H}}})", steps=[(None, "green"), (1, "red")], legend="holds"), 4, 4)
    l.add(stat("Actions failed (range)", f'sum(increase(hostmedic_actions_total{{result="failed", {H}}}[$__range]))',
               steps=[(None, "green"), (1, "red")], legend="failed"), 4, 4)
    l.add(stat("hostmedic versions", f"count by (version) (hostmedic_build_info{{{H}}})", legend="{{version}}"), 4, 4)
    l.add(table("Hosts, worst first", [
        ("Score", score),
        ("Up", up),
        ("Critical", f'count by (instance) (ALERTS{{alertstate="firing", severity="critical", {H}}})'),
        ("Warnings", f'count by (instance) (ALERTS{{alertstate="firing", severity!~"critical|info", {H}}})'),
        ("Load per CPU", f"hostmedic_host_load1{{{H}}} / hostmedic_host_cpus{{{H}}}"),
        ("Memory available", f"hostmedic_host_memory_available_bytes{{{H}}} / hostmedic_host_memory_total_bytes{{{H}}}"),
        ("Fullest disk", f"max by (instance) (1 - hostmedic_host_filesystem_avail_bytes{{{H}}} / hostmedic_host_filesystem_size_bytes{{{H}}})"),
        ("Hottest sensor", f"max by (instance) (hostmedic_hwmon_temp_celsius{{{H}}})"),
        ("Failed units", f'count by (instance) (hostmedic_systemd_unit_state{{state="failed", {H}}} == 1)'),
        ("Unhealthy containers", f'count by (instance) (hostmedic_docker_container_health{{health="unhealthy", {H}}} == 1)'),
        ("Holds", f"hostmedic_remediation_holds_active{{{H}}}"),
    ], ["instance"], sort="Score",
        desc="Score = 100 if hostmedic is down + 10 per critical alert + 1 per other alert; highest first.",
        units={"Memory available": "percentunit", "Fullest disk": "percentunit", "Hottest sensor": "celsius"}), 24, 10)
    l.add(bargauge("Firing alerts per host", f'sort_desc(count by (instance) (ALERTS{{alertstate="firing", severity!="info", {H}}}))',
                   "{{instance}}", steps=[(None, "green"), (1, "orange"), (5, "red")]), 8, 8)
    l.add(bargauge("Load per CPU, worst 10", f"topk(10, hostmedic_host_load1{{{H}}} / hostmedic_host_cpus{{{H}}})",
                   "{{instance}}", steps=[(None, "green"), (1, "yellow"), (2, "red")]), 8, 8)
    l.add(bargauge("Fullest filesystems, worst 10",
                   f"topk(10, 1 - hostmedic_host_filesystem_avail_bytes{{{H}}} / hostmedic_host_filesystem_size_bytes{{{H}}})",
                   "{{instance}} {{mountpoint}}", "percentunit", [(None, "green"), (0.75, "yellow"), (0.85, "red")], max_=1), 8, 8)
    l.add(bargauge("Least memory available, worst 10",
                   f"bottomk(10, hostmedic_host_memory_available_bytes{{{H}}} / hostmedic_host_memory_total_bytes{{{H}}})",
                   "{{instance}}", "percentunit", [(None, "red"), (0.1, "yellow"), (0.2, "green")], max_=1), 8, 8)
    l.add(bargauge("Hottest sensors, worst 10", f"topk(10, max by (instance) (hostmedic_hwmon_temp_celsius{{{H}}}))",
                   "{{instance}}", "celsius", [(None, "green"), (75, "yellow"), (85, "red")]), 8, 8)
    l.add(bargauge("Restarting services, worst 10",
                   f"topk(10, rate(hostmedic_systemd_service_restarts_total{{{H}}}[10m]) * 60)",
                   "{{instance}} {{name}}", steps=[(None, "green"), (0.5, "red")]), 8, 8)
    l.add(table("Remediation per host (time range)", [
        ("Actions", f"sum by (instance, result) (increase(hostmedic_actions_total{{{H}}}[$__range]))"),
    ], ["instance", "result"], sort="Actions"), 24, 8)
    return dashboard("hostmedic-fleet", "hostmedic / Fleet overview",
                     "Every host at a glance, worst first (issue 9: many hosts behind one Prometheus).", l)


DASHBOARDS = {
    "hostmedic-host.json": host_overview,
    "hostmedic-units.json": units,
    "hostmedic-containers.json": containers,
    "hostmedic-files.json": files,
    "hostmedic-processes.json": processes,
    "hostmedic-resources.json": resources,
    "hostmedic-remediation.json": remediation,
    "hostmedic-fleet.json": fleet,
}


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "dashboards")
    os.makedirs(out_dir, exist_ok=True)
    for name, build in DASHBOARDS.items():
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(build(), f, indent=2, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
