//! A small W3C WebDriver client over HTTP for headless Chromium: `chromedriver` is started on
//! a free loopback port for each browser and stopped with it. Only what the console tests
//! use: navigate, find, click, type, read text and attributes, run a script, screenshot.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::eventually;

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// WebDriver's codes of the Tab and Enter keys (W3C WebDriver, "Keyboard actions").
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";

/// How long page conditions may take (page loads, live updates, sign-in round trips).
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: tokio::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        eventually("chromedriver ready", PAGE_TIMEOUT, || async {
            match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"]
        });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {res}"))
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{id}"),
            _driver: driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .expect("webdriver json");
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The first element `css` selects, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits until `css` selects an element; fails showing where the browser is and what it
    /// shows.
    pub async fn wait_for(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        loop {
            if let Some(el) = self.find(css).await {
                return el;
            }
            if tokio::time::Instant::now() >= deadline {
                self.fail(&format!("an element {css}")).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let el = self.wait_for(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Types `text` (which may hold key codes such as [`TAB`]) into whatever has the focus,
    /// as a person at the keyboard would.
    pub async fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            let c = c.to_string();
            actions.push(json!({ "type": "keyDown", "value": c }));
            actions.push(json!({ "type": "keyUp", "value": c }));
        }
        let body = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] });
        self.call(reqwest::Method::POST, "/actions", Some(body))
            .await;
    }

    /// Runs a script in the page and returns its result.
    pub async fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
        .await
    }

    /// The text of the first element `css` selects ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        let js = format!(
            "var e = document.querySelector({}); return e ? e.innerText : '';",
            json!(css)
        );
        self.script(&js)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the text of `css` satisfies `cond`; returns it. Fails showing where the
    /// browser is and what it shows.
    pub async fn wait_text(&self, what: &str, css: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        loop {
            let text = self.text(css).await;
            if cond(&text) {
                return text;
            }
            if tokio::time::Instant::now() >= deadline {
                self.fail(what).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Panics naming `what` with the page's address and text.
    pub async fn fail(&self, what: &str) -> ! {
        let at = self.call(reqwest::Method::GET, "/url", None).await;
        let shown = self
            .script("return document.body ? document.body.innerText : '';")
            .await;
        panic!("timed out waiting for {what} at {at}; the page shows: {shown}");
    }

    /// Saves a PNG of the page under `target/console-screenshots/`.
    pub async fn screenshot(&self, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    pub async fn quit(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}
