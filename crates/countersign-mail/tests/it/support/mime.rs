//! Just enough MIME to read what lettre writes: headers (unfolded), a
//! single text part or a multipart/alternative of text and HTML, each in
//! 7bit, quoted-printable or base64. (mail-parser is not in the lockfile.)

use base64::Engine as _;

/// A received message, decoded.
#[derive(Debug)]
pub struct Mail {
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Mail {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Headers and body of one entity.
fn split(entity: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = entity.split_once("\r\n\r\n").unwrap_or((entity, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation without a header");
            last.1.push_str(line);
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

/// The value of parameter `name` in a header like `Content-Type`.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode(headers: &[(String, String)], body: &str) -> String {
    let cte = header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    let bytes = match cte.as_str() {
        "quoted-printable" => quoted_printable(body),
        "base64" => {
            let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .expect("base64 body")
        }
        _ => body.as_bytes().to_vec(),
    };
    String::from_utf8(bytes)
        .expect("utf-8 body")
        .replace("\r\n", "\n")
}

fn quoted_printable(body: &str) -> Vec<u8> {
    let body = body.replace("=\r\n", "");
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("qp escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Read a message as received after `DATA` (dot-stuffing already undone).
pub fn parse(data: &str) -> Mail {
    let (headers, body) = split(data);
    let content_type = header(&headers, "Content-Type")
        .unwrap_or("text/plain")
        .to_owned();
    let mut mail = Mail {
        headers: headers.clone(),
        text: None,
        html: None,
    };
    let mut take = |ct: &str, value: String| {
        let ct = ct.to_ascii_lowercase();
        if ct.starts_with("text/html") {
            mail.html = Some(value);
        } else if ct.starts_with("text/plain") {
            mail.text = Some(value);
        }
    };
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = param(&content_type, "boundary").expect("multipart boundary");
        let delimiter = format!("--{boundary}");
        for chunk in body.split(delimiter.as_str()).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
            let chunk = chunk.strip_suffix("\r\n").unwrap_or(chunk);
            let (part_headers, part_body) = split(chunk);
            let ct = header(&part_headers, "Content-Type")
                .unwrap_or("text/plain")
                .to_owned();
            take(&ct, decode(&part_headers, part_body));
        }
    } else {
        take(&content_type, decode(&headers, body));
    }
    mail
}
