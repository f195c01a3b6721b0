//! A local HTTP endpoint that records Twilio-style `Messages.json` requests (one request per
//! connection) and answers with a configurable status.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: String,
    pub content_type: String,
    /// Form fields of the body, decoded.
    pub form: Vec<(String, String)>,
}

impl Recorded {
    pub fn field(&self, name: &str) -> &str {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no form field {name} in {:?}", self.form))
    }

    /// The 6-digit code in the message text.
    pub fn code(&self) -> String {
        let body = self.field("Body");
        body.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap_or_else(|| panic!("no code in SMS {body:?}"))
            .to_owned()
    }
}

pub struct SmsSink {
    pub base_url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// Status answered to every request.
    pub status: Arc<Mutex<u16>>,
}

impl SmsSink {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(201));
        let (r, st) = (requests.clone(), status.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (r, st) = (r.clone(), st.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &r, &st);
                });
            }
        });
        Self {
            base_url,
            requests,
            status,
        }
    }

    pub fn all(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn last(&self) -> Recorded {
        self.all().pop().expect("no SMS request recorded")
    }

    pub fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }
}

fn serve(
    stream: TcpStream,
    log: &Mutex<Vec<Recorded>>,
    status: &Mutex<u16>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let (mut length, mut authorization, mut content_type) = (0usize, String::new(), String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "authorization" => authorization = v.trim().to_owned(),
                "content-type" => content_type = v.trim().to_owned(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let form = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    log.lock().unwrap().push(Recorded {
        method,
        path,
        authorization,
        content_type,
        form,
    });
    let code = *status.lock().unwrap();
    let answer = if code < 300 {
        r#"{"sid":"SM00000000000000000000000000000000","status":"queued"}"#
    } else {
        r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    out.flush()
}
