//! One sentence for a failed request that never got an answer: which host, what went wrong
//! (name resolution, refused, timed out, TLS), the causes below it, and what to check. The
//! URL's path and query are never shown (they may carry tenant ids or codes); the host is.

use std::error::Error;

/// What kind of failure a transport error is, read from its chain of causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Dns,
    Refused,
    Timeout,
    Tls,
    Other,
}

impl Failure {
    fn hint(self) -> &'static str {
        match self {
            Failure::Dns => {
                "check the host name in the configuration and that this machine can resolve it (DNS, /etc/resolv.conf)"
            }
            Failure::Refused => {
                "nothing listens there: check the host and port, and that the service is up"
            }
            Failure::Timeout => {
                "no answer in time: check network routes, firewalls and any proxy (HTTPS_PROXY) between here and there"
            }
            Failure::Tls => {
                "the TLS handshake failed: check the URL's scheme and the server's certificate (a TLS-inspecting proxy needs its CA trusted)"
            }
            Failure::Other => "check the URL and the network between here and there",
        }
    }
}

/// Describes `err`: "cannot reach HOST: CAUSE: CAUSE; HINT".
pub fn describe(err: &(dyn Error + 'static)) -> String {
    describe_at(None, err)
}

/// Like [`describe`], naming `host` when the error itself does not carry one (clients other
/// than reqwest, e.g. a WebSocket connect).
pub fn describe_at(host_hint: Option<&str>, err: &(dyn Error + 'static)) -> String {
    let (host, causes, failure) = analyse(err);
    let host = host.or_else(|| host_hint.map(str::to_owned));
    let what = match failure {
        Failure::Dns => "cannot resolve",
        _ => "cannot reach",
    };
    let target = host.unwrap_or_else(|| "the server".to_owned());
    format!("{what} {target}: {}; {}", causes.join(": "), failure.hint())
}

/// The distinct messages of `err`'s chain of causes as one sentence ("A: B: C"), for errors
/// that are not about reaching a host (a request that could not be built, say).
pub fn causes(err: &(dyn Error + 'static)) -> String {
    analyse(err).1.join(": ")
}

/// The host, the distinct messages of the chain of causes, and the kind of failure.
fn analyse(err: &(dyn Error + 'static)) -> (Option<String>, Vec<String>, Failure) {
    let mut host = None;
    let mut causes: Vec<String> = Vec::new();
    let mut failure = Failure::Other;
    let mut next: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = next {
        let reqwest_error = e
            .downcast_ref::<reqwest::Error>()
            .or_else(|| e.downcast_ref::<Box<reqwest::Error>>().map(|b| &**b));
        if let Some(r) = reqwest_error {
            if host.is_none() {
                host = r.url().and_then(host_of);
            }
            if r.is_timeout() {
                failure = Failure::Timeout;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => failure = Failure::Refused,
                std::io::ErrorKind::TimedOut => failure = Failure::Timeout,
                _ => {}
            }
        }
        let text = strip_url(&e.to_string());
        let lower = text.to_ascii_lowercase();
        if failure == Failure::Other {
            if lower.contains("dns error") || lower.contains("failed to lookup address") {
                failure = Failure::Dns;
            } else if lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("handshake")
            {
                failure = Failure::Tls;
            } else if lower.contains("connection refused") {
                failure = Failure::Refused;
            } else if lower.contains("timed out") {
                failure = Failure::Timeout;
            }
        }
        if !text.is_empty() && !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        next = e.source();
    }
    (host, causes, failure)
}

/// The failure kind alone.
#[cfg(test)]
fn classify(err: &(dyn Error + 'static)) -> Failure {
    analyse(err).2
}

fn host_of(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// reqwest writes "… for url (https://host/path?query)": the host is shown separately, and
/// the path and query are not shown at all.
fn strip_url(text: &str) -> String {
    match text.find(" for url (") {
        Some(i) => {
            let rest = &text[i..];
            let end = rest.find(')').map(|j| i + j + 1).unwrap_or(text.len());
            format!("{}{}", &text[..i], &text[end..])
        }
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fail(url: &str) -> reqwest::Error {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_host_and_says_what_to_check() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = fail(&format!("http://127.0.0.1:{port}/secret/path?code=xyz")).await;
        let text = describe(&e);
        assert!(
            text.starts_with(&format!("cannot reach 127.0.0.1:{port}: ")),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(text.contains("nothing listens there"), "{text}");
        assert!(
            !text.contains("secret/path") && !text.contains("xyz"),
            "{text}"
        );
        assert_eq!(classify(&e), Failure::Refused);
    }

    #[tokio::test]
    async fn an_unresolvable_name_is_a_dns_failure() {
        let e = fail("http://no-such-host.invalid/").await;
        let text = describe(&e);
        assert!(
            text.starts_with("cannot resolve no-such-host.invalid: "),
            "{text}"
        );
        assert_eq!(classify(&e), Failure::Dns, "{text}");
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and never answers.
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let e = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(200))
            .build()
            .unwrap()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(classify(&e), Failure::Timeout, "{}", describe(&e));
    }
}
