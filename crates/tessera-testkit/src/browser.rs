//! A minimal browser for the hosted pages: keeps cookies, follows nothing by itself, and
//! reads the fields of the page's form — enough to walk a login and consent like a user.

use std::collections::BTreeMap;

/// A response as a browser sees it.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The `name`/`value` pairs of the page's `<input>` fields (hidden ones and the CSRF
    /// token), unescaped.
    pub fn form_fields(&self) -> BTreeMap<String, String> {
        let mut fields = BTreeMap::new();
        for tag in self.body.split("<input").skip(1) {
            let tag = tag.split('>').next().unwrap_or("");
            if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value")) {
                fields.insert(name, value);
            }
        }
        fields
    }

    /// The query parameters of the `Location` header.
    pub fn location_params(&self) -> BTreeMap<String, String> {
        let location = self.location.as_deref().expect("no Location header");
        let url = reqwest::Url::parse(location).expect("Location is not a URL");
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A cookie-keeping client that does not follow redirects.
pub struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser whose connections come from `ip` (any `127.x.y.z` on Linux loopback), so
    /// that tests can sign in from several client addresses.
    pub fn from_address(ip: std::net::IpAddr) -> Self {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(ip)
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Sets a cookie as if a page had set it.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    pub fn forget_cookies(&mut self) {
        self.cookies.clear();
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = text.to_ascii_lowercase().contains("max-age=0");
            if expired || value.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let mut request = self.client.get(url);
        if let Some(cookies) = self.cookie_header() {
            request = request.header(reqwest::header::COOKIE, cookies);
        }
        let response = request.send().await.expect("request failed");
        self.finish(response).await
    }

    pub async fn post_form(&mut self, url: &str, fields: &BTreeMap<String, String>) -> Page {
        let mut request = self.client.post(url).form(fields);
        if let Some(cookies) = self.cookie_header() {
            request = request.header(reqwest::header::COOKIE, cookies);
        }
        let response = request.send().await.expect("request failed");
        self.finish(response).await
    }
}
