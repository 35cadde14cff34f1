//! `kind = "webhook"`: a POST of a JSON document (source, title, message and
//! the alert) with optional headers and bearer token.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{NotifyError, Prepared, add_bearer, check_secret_file, check_url};
use crate::error::ConfigError;

channel! {
    /// `kind = "webhook"`: POST of a JSON document.
    pub struct WebhookChannel {
        pub url: String,
        #[serde(default)]
        pub headers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bearer_token_file: Option<PathBuf>,
    }
}

impl WebhookChannel {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_url(&format!("{key}.url"), &self.url)?;
        for (name, value) in &self.headers {
            let hk = format!("{key}.headers.{name}");
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| ConfigError::invalid(&hk, "invalid header name"))?;
            // The value is not echoed: it may be a secret.
            HeaderValue::from_str(value).map_err(|_| ConfigError::invalid(&hk, "invalid header value"))?;
        }
        if let Some(f) = &self.bearer_token_file {
            check_secret_file(&format!("{key}.bearer_token_file"), f)?;
        }
        Ok(())
    }

    pub(super) fn prepare(
        &self,
        title: &str,
        message: &str,
        alert: &serde_json::Value,
    ) -> Result<Prepared, NotifyError> {
        let mut headers = HeaderMap::new();
        let mut secrets = Vec::new();
        for (k, v) in &self.headers {
            let invalid = |part| NotifyError::Header { name: k.clone(), part };
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| invalid("name"))?;
            let mut value = HeaderValue::from_str(v).map_err(|_| invalid("value"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
            if v.len() >= 8 {
                secrets.push(v.clone());
            }
        }
        add_bearer(self.bearer_token_file.as_deref(), &mut headers, &mut secrets)?;
        let url = reqwest::Url::parse(&self.url).map_err(|source| NotifyError::Url { what: "URL", source })?;
        let body = serde_json::json!({
            "source": "hostmedic",
            "title": title,
            "message": message,
            "alert": alert,
        });
        Ok(Prepared::new(url, headers, body, secrets))
    }
}
