//! Text between the two sides: Teams message HTML to plain text with light markdown (bold,
//! italics, links, list bullets, line breaks), the quote of a replied-to message, the
//! hosted-content images a message embeds, and agent text to Teams HTML. Pure functions.

use crate::integrations::messaging::config::ReplyPolicy;
use crate::integrations::messaging::wire::ChatMessage;

/// The text Genesys gets for a Teams message, with the reply policy applied.
pub fn inbound_text(msg: &ChatMessage, policy: ReplyPolicy) -> String {
    let is_html = msg
        .body
        .content_type
        .as_deref()
        .is_none_or(|t| t.eq_ignore_ascii_case("html"));
    let own = if is_html {
        html_to_text(&msg.body.content)
    } else {
        msg.body.content.trim().to_owned()
    };
    match (policy, quoted(msg)) {
        (ReplyPolicy::Quote, Some((who, preview))) => {
            let quote: Vec<String> = preview.lines().map(|l| format!("> {l}")).collect();
            let head = match who {
                Some(w) => format!("> {w} wrote:\n"),
                None => String::new(),
            };
            format!("{head}{}\n\n{own}", quote.join("\n"))
        }
        _ => own,
    }
}

/// `(sender, preview)` of the message a reply refers to: the `messageReference` attachment,
/// whose `content` is JSON with `messagePreview` and `messageSender.user.displayName`
/// (<https://learn.microsoft.com/en-us/graph/api/resources/chatmessageattachment>; the field
/// names of the JSON are as Teams sends them today, not a documented schema).
fn quoted(msg: &ChatMessage) -> Option<(Option<String>, String)> {
    let att = msg
        .attachments
        .iter()
        .find(|a| a.content_type.as_deref() == Some("messageReference"))?;
    let v: serde_json::Value = serde_json::from_str(att.content.as_deref()?).ok()?;
    let preview = v.get("messagePreview")?.as_str()?.trim().to_owned();
    let who = v
        .pointer("/messageSender/user/displayName")
        .and_then(|s| s.as_str())
        .map(str::to_owned);
    Some((who, preview))
}

/// Teams HTML to plain text with light markdown.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut href: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        let Some(gt) = rest[lt..].find('>') else {
            out.push_str(&decode_entities(&rest[lt..]));
            rest = "";
            break;
        };
        let tag = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match (name.as_str(), closing) {
            ("br", _) => out.push('\n'),
            ("p" | "div", true) => out.push('\n'),
            ("li", false) => {
                newline(&mut out);
                out.push_str("- ");
            }
            ("li" | "ul" | "ol", true) => newline(&mut out),
            ("b" | "strong", _) => out.push_str("**"),
            ("i" | "em", _) => out.push('_'),
            ("a", false) => href = attr(tag, "href"),
            ("a", true) => {
                if let Some(h) = href.take() {
                    out.push_str(&format!(" ({h})"));
                }
            }
            _ => {}
        }
    }
    out.push_str(&decode_entities(rest));
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let mut text = lines.join("\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.trim().to_owned()
}

fn newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// The value of `name="…"` (or `'…'`) in a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        let after = lower[at + name.len()..].trim_start();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        if before_ok && let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let quote = v.chars().next()?;
            if quote == '"' || quote == '\'' {
                let start = tag.len() - v.len() + 1;
                let end = tag[start..].find(quote)? + start;
                return Some(decode_entities(&tag[start..end]));
            }
        }
        from = at + name.len();
    }
    None
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`, `&apos;`, `&nbsp;` and numeric references.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => ent.strip_prefix('#').and_then(|n| {
                let code = match n.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.parse().ok(),
                };
                code.and_then(char::from_u32)
            }),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `src` of every `<img>` in the body that points at a message's hosted content
/// (`…/hostedContents/{id}/$value`,
/// <https://learn.microsoft.com/en-us/graph/api/resources/chatmessagehostedcontent>).
pub fn hosted_images(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.to_ascii_lowercase().find("<img") {
        let tail = &rest[i..];
        let end = tail.find('>').unwrap_or(tail.len());
        if let Some(src) = attr(&tail[..end], "src")
            && src.contains("/hostedContents/")
            && !out.contains(&src)
        {
            out.push(src);
        }
        rest = &tail[end.min(tail.len())..];
        if rest.len() == tail.len() {
            break;
        }
    }
    out
}

/// HTML-escapes text for a Teams message body (line breaks become `<br>`).
pub fn text_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::messaging::wire::{ChatAttachment, ItemBody};

    fn msg(html: &str, attachments: Vec<ChatAttachment>) -> ChatMessage {
        ChatMessage {
            id: "1".into(),
            chat_id: None,
            message_type: Some("message".into()),
            created_date_time: None,
            deleted_date_time: None,
            from: None,
            body: ItemBody {
                content_type: Some("html".into()),
                content: html.into(),
            },
            attachments,
        }
    }

    #[test]
    fn html_becomes_plain_text_with_light_markdown() {
        assert_eq!(
            html_to_text(
                "<p>Hello <b>team</b>,</p><p>see <a href=\"https://x.example/a?b=1&amp;c=2\">this</a></p>"
            ),
            "Hello **team**,\nsee this (https://x.example/a?b=1&c=2)"
        );
        assert_eq!(
            html_to_text("<ul><li>one</li><li>two &lt;3&gt;</li></ul>"),
            "- one\n- two <3>"
        );
        assert_eq!(html_to_text("a<br>b&nbsp;&#233;&#x41;"), "a\nb éA");
        assert_eq!(html_to_text("fish & chips <3"), "fish & chips <3");
        assert_eq!(
            html_to_text("<div><div>x</div><attachment id=\"9\"></attachment></div>"),
            "x"
        );
    }

    #[test]
    fn replies_are_quoted_or_stripped() {
        let reference = ChatAttachment {
            id: Some("9".into()),
            content_type: Some("messageReference".into()),
            content_url: None,
            content: Some(
                r#"{"messageId":"9","messagePreview":"Is it fixed?","messageSender":{"user":{"displayName":"Ann"}}}"#
                    .into(),
            ),
            name: None,
        };
        let m = msg(
            "<attachment id=\"9\"></attachment><p>Not yet</p>",
            vec![reference],
        );
        assert_eq!(
            inbound_text(&m, ReplyPolicy::Quote),
            "> Ann wrote:\n> Is it fixed?\n\nNot yet"
        );
        assert_eq!(inbound_text(&m, ReplyPolicy::Strip), "Not yet");
        assert_eq!(
            inbound_text(&msg("<p>hi</p>", vec![]), ReplyPolicy::Quote),
            "hi"
        );
    }

    #[test]
    fn hosted_images_are_found_once() {
        let html = r#"<p>look</p><img src="https://graph.microsoft.com/v1.0/chats/19:a/messages/1/hostedContents/aWQ=/$value" width="10"><IMG alt='x' src='https://graph.microsoft.com/v1.0/chats/19:a/messages/1/hostedContents/aWQ=/$value'><img src="https://elsewhere.example/x.png">"#;
        assert_eq!(
            hosted_images(html),
            vec![
                "https://graph.microsoft.com/v1.0/chats/19:a/messages/1/hostedContents/aWQ=/$value"
            ]
        );
    }

    #[test]
    fn agent_text_is_escaped() {
        assert_eq!(
            text_to_html("a<b> & \"c\"\nd"),
            "a&lt;b&gt; &amp; &quot;c&quot;<br>d"
        );
    }
}
