//! The HTTP client of the CLI: the server's error body becomes the error message.

use anyhow::{anyhow, Context};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ServerArgs;

pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

impl Client {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let api_key = args
            .api_key
            .clone()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| anyhow!("no API key: pass --api-key or set ALLOT_API_KEY (allot serve prints one on first run)"))?;
        Ok(Self {
            http: reqwest::Client::new(),
            base: args.server.trim_end_matches('/').to_owned(),
            api_key,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let res = req
            .bearer_auth(&self.api_key)
            .send()
            .await
            .with_context(|| format!("cannot reach the Allot server at {}", self.base))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let msg = body["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(anyhow!("{msg}"));
        }
        Ok(body)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Ok(serde_json::from_value(
            self.send(self.http.get(format!("{}{path}", self.base)))
                .await?,
        )?)
    }

    /// A body as text (CSV exports); errors as for JSON calls.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .with_context(|| format!("cannot reach the Allot server at {}", self.base))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let msg = body["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(anyhow!("{msg}"));
        }
        Ok(text)
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    /// A body that is not JSON (CSV imports).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Value> {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body),
        )
        .await
    }

    pub async fn delete_json(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.delete(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}

/// A path segment, escaped (token names may hold spaces and other characters).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
