//! Unit tests of the channel module: redaction, config round trip, the
//! shared delivery policy, token files.

use std::time::Duration;

use super::*;

#[test]
fn redacts_secrets() {
    assert_eq!(
        redact("GET /bot123:abc/x failed 123:abc", &["123:abc"]),
        "GET /bot[REDACTED]/x failed [REDACTED]"
    );
    assert_eq!(redact("short ab", &["ab"]), "short ab");
}

#[test]
fn channels_round_trip_through_the_effective_config() {
    let d = tempfile::tempdir().unwrap();
    let tok = d.path().join("t");
    std::fs::write(&tok, "secret-token\n").unwrap();
    let text = format!(
        "[notify.tg]\nkind = \"telegram\"\nbot_token_file = \"{0}\"\nchat_id = -42\n\
         [notify.n]\nkind = \"ntfy\"\nserver = \"https://ntfy.example\"\ntopic = \"t\"\ntags = [\"a\"]\n\
         [notify.w]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\n[notify.w.headers]\nX-A = \"b\"\n",
        tok.display()
    );
    let cfg = crate::config::Config::parse(&text, "t").unwrap();
    let NotifyChannel::Telegram(tg) = &cfg.notify["tg"] else {
        panic!()
    };
    assert_eq!(tg.chat_id, ChatId::Id(-42));
    assert_eq!(tg.api_base, "https://api.telegram.org");
    let rendered = cfg.to_toml();
    assert!(!rendered.contains("secret-token"));
    let back = crate::config::Config::parse(&rendered, "rendered").unwrap();
    assert_eq!(back.notify, cfg.notify);
}

#[test]
fn every_kind_has_the_delivery_policy_and_typos_list_the_keys() {
    let parse = |text: &str| toml::from_str::<BTreeMap<String, NotifyChannel>>(text);
    let chans = parse(
        "[n]\nkind = \"ntfy\"\nserver = \"https://ntfy.example\"\ntopic = \"t\"\n\
         [t]\nkind = \"telegram\"\nbot_token_file = \"/t\"\nchat_id = 1\nretries = 5\n\
         [w]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nbackoff = \"250ms\"\ntimeout = \"2s\"\n",
    )
    .unwrap();
    let s = Duration::from_secs;
    assert_eq!(chans["n"].policy(), (3, s(1), s(10)));
    assert_eq!(chans["t"].policy(), (5, s(1), s(10)));
    assert_eq!(chans["w"].policy(), (3, Duration::from_millis(250), s(2)));
    let e = parse("[w]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nretires = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `retires`") && e.contains("`retries`"), "{e}");
}

#[test]
fn secret_files() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("t");
    std::fs::write(&f, "  tok-123\n").unwrap();
    assert_eq!(read_secret(&f).unwrap(), "tok-123");
    std::fs::write(&f, "a\nb\n").unwrap();
    let e = read_secret(&f).unwrap_err().to_string();
    assert_eq!(e, format!("{}: must hold a single line", f.display()));
    std::fs::write(&f, "\n").unwrap();
    assert_eq!(
        read_secret(&f).unwrap_err().to_string(),
        format!("{}: empty", f.display())
    );
    let missing = d.path().join("missing");
    let e = read_secret(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: ", missing.display())) && e.contains("No such file"),
        "{e}"
    );
}

#[test]
fn evidence_is_cut_first_never_the_headline() {
    let head = "stopped crash-looping worker.service\nHostmedicUnitCrashLooping (firing)";
    let evidence: String = (0..500)
        .map(|i| format!("journal line {i:03} with some text\n"))
        .collect();
    for (max, m) in [(TELEGRAM_TEXT_MAX, Measure::Utf16), (NTFY_MESSAGE_MAX, Measure::Bytes)] {
        let out = compose(head, &evidence, max, m);
        assert!(m.len(&out) <= max, "{} > {max}", m.len(&out));
        assert!(out.starts_with(head), "headline intact");
        assert!(out.contains("journal line 000"), "evidence kept from its start");
        assert!(out.trim_end().ends_with("has all of it)"), "says it was cut");
    }
    // Fits: unchanged, one blank line between.
    assert_eq!(compose("h", "e\n", 100, Measure::Bytes), "h\n\ne");
    assert_eq!(compose("h", "", 100, Measure::Bytes), "h");
    // Telegram counts UTF-16 units: astral characters count twice.
    let wide = "😀".repeat(3000);
    let out = compose("h", &wide, TELEGRAM_TEXT_MAX, Measure::Utf16);
    assert!(Measure::Utf16.len(&out) <= TELEGRAM_TEXT_MAX);
    // A headline longer than the limit is cut (nothing else fits).
    let long = "x".repeat(5000);
    let out = compose(&long, "evidence", NTFY_MESSAGE_MAX, Measure::Bytes);
    assert_eq!(out.len(), NTFY_MESSAGE_MAX - "…".len() + "…".len());
    assert!(!out.contains("evidence"));
}

/// A Telegram channel to chat 1 whose bot token file lives in the returned
/// folder (kept alive by the caller); nothing is sent, only prepared.
fn telegram() -> (tempfile::TempDir, NotifyChannel) {
    let d = tempfile::tempdir().unwrap();
    let tok = d.path().join("t");
    std::fs::write(&tok, "123456:secret-token-value\n").unwrap();
    let ch = NotifyChannel::Telegram(TelegramChannel {
        api_base: "http://127.0.0.1:1".into(),
        bot_token_file: tok,
        chat_id: ChatId::Id(1),
        retries: 0,
        backoff: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
    });
    (d, ch)
}

#[test]
fn telegram_text_carries_title_message_and_evidence_within_4096() {
    let (_d, ch) = telegram();
    let evidence = "e".repeat(10_000);
    let p = ch
        .prepare("title", "message", &evidence, &serde_json::json!({}))
        .unwrap();
    let text = p.body["text"].as_str().unwrap();
    assert!(text.starts_with("title\nmessage\n\neee"), "{}", &text[..40]);
    assert!(text.encode_utf16().count() <= 4096);
}

#[test]
fn control_characters_never_reach_the_channel_raw() {
    let (_d, ch) = telegram();
    let p = ch
        .prepare(
            "Runaway\nApprove: now",
            "line 1\r\nline 2\u{1b}[2J",
            "log \u{202e}txt",
            &serde_json::json!({}),
        )
        .unwrap();
    let text = p.body["text"].as_str().unwrap();
    assert!(
        text.starts_with("Runaway\\nApprove: now\nline 1\nline 2\\u{1b}[2J"),
        "{text}"
    );
    assert!(text.contains("log \\u{202e}txt"), "{text}");
    assert!(
        !text.contains('\r') && !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
}
