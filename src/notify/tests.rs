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
    let e = read_secret(&f).unwrap_err();
    assert!(e.contains("single line"), "{e}");
    std::fs::write(&f, "\n").unwrap();
    assert!(read_secret(&f).unwrap_err().contains("empty"));
    assert!(read_secret(&d.path().join("missing")).is_err());
}
