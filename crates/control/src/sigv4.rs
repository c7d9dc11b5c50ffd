//! AWS Signature Version 4 verification of `Authorization: AWS4-HMAC-SHA256 ...` headers.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub struct Keys {
    pub access_key_id: String,
    /// When absent, only the access key id is checked.
    pub secret_access_key: Option<String>,
}

pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// (lower-case name, value)
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// (HTTP status, error code, message)
pub type Failure = (u16, &'static str, String);

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{:02x}", x)).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{:02X}", b),
        })
        .collect()
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

pub fn verify(keys: &Keys, r: &Request) -> Result<(), Failure> {
    let Some(auth) = header(r, "authorization") else {
        return Err((403, "MissingAuthenticationToken", "Request is missing Authentication Token".into()));
    };
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err((400, "IncompleteSignature", "Only the AWS4-HMAC-SHA256 Authorization scheme is supported".into()));
    };
    let mut credential = "";
    let mut signed = "";
    let mut signature = "";
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = v;
        }
    }
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || signed.is_empty() || signature.is_empty() {
        return Err((
            400,
            "IncompleteSignature",
            format!("Authorization header requires Credential, SignedHeaders and Signature: {}", auth),
        ));
    }
    if scope[0] != keys.access_key_id {
        return Err((403, "InvalidClientTokenId", "The security token included in the request is invalid.".into()));
    }
    let Some(secret) = &keys.secret_access_key else { return Ok(()) };
    let Some(amz_date) = header(r, "x-amz-date") else {
        return Err((400, "IncompleteSignature", "Signature Version 4 requests need an X-Amz-Date header".into()));
    };
    // Canonical request.
    let mut q: Vec<(String, String)> =
        form_urlencoded::parse(r.query.as_bytes()).map(|(k, v)| (uri_encode(&k), uri_encode(&v))).collect();
    q.sort();
    let canonical_query = q.iter().map(|(k, v)| format!("{}={}", k, v)).collect::<Vec<_>>().join("&");
    let mut canonical_headers = String::new();
    for name in signed.split(';') {
        let values: Vec<String> = r
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{}:{}\n", name, values.join(",")));
    }
    let payload_hash = match header(r, "x-amz-content-sha256") {
        Some(h) => h.to_string(),
        None => hex(&Sha256::digest(r.body)),
    };
    let path = if r.path.is_empty() { "/" } else { r.path };
    let canonical =
        format!("{}\n{}\n{}\n{}\n{}\n{}", r.method, path, canonical_query, canonical_headers, signed, payload_hash);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        amz_date,
        scope[1..].join("/"),
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{}", secret).as_bytes(), scope[1].as_bytes());
    for s in &scope[2..] {
        key = hmac(&key, s.as_bytes());
    }
    let expected = hex(&hmac(&key, string_to_sign.as_bytes()));
    if expected != signature {
        return Err((
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ));
    }
    Ok(())
}

/// The `Authorization` header value for a POST of `body` (signed headers `host;x-amz-date`),
/// as AWS SDKs compute it: what `ferrocache cluster` sends when it has keys.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    host: &str,
    path: &str,
    amz_date: &str,
    body: &[u8],
) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let canonical = format!(
        "POST\n{}\n\nhost:{}\nx-amz-date:{}\n\nhost;x-amz-date\n{}",
        path,
        host,
        amz_date,
        hex(&Sha256::digest(body))
    );
    let day = &amz_date[..8.min(amz_date.len())];
    let scope = format!("{}/{}/{}/aws4_request", day, region, service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{}\n{}\n{}", amz_date, scope, hex(&Sha256::digest(canonical.as_bytes())));
    let mut key = hmac(format!("AWS4{}", secret).as_bytes(), day.as_bytes());
    for s in [region, service, "aws4_request"] {
        key = hmac(&key, s.as_bytes());
    }
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders=host;x-amz-date, Signature={}",
        access_key_id,
        scope,
        hex(&hmac(&key, string_to_sign.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let keys = Keys { access_key_id: "AKID".into(), secret_access_key: Some("s3cret/Key+1".into()) };
        let body = b"Action=DescribeCacheClusters&Version=2015-02-02";
        let auth = authorization(
            "AKID",
            "s3cret/Key+1",
            "us-east-1",
            "elasticache",
            "127.0.0.1:8080",
            "/",
            "20261126T093000Z",
            body,
        );
        let req = |auth: &str, body: &'static [u8]| Request {
            method: "POST",
            path: "/",
            query: "",
            headers: vec![
                ("host".into(), "127.0.0.1:8080".into()),
                ("x-amz-date".into(), "20261126T093000Z".into()),
                ("authorization".into(), auth.into()),
            ],
            body,
        };
        assert!(verify(&keys, &req(&auth, body)).is_ok());
        assert_eq!(verify(&keys, &req(&auth, b"Action=DeleteCacheCluster")).unwrap_err().1, "SignatureDoesNotMatch");
    }

    /// AWS's published SigV4 test suite case "get-vanilla-query-order-key-case".
    #[test]
    fn aws_test_suite_vector() {
        let keys = Keys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
        };
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500";
        let req = |auth: &str| Request {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: vec![
                ("host".into(), "example.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
                ("authorization".into(), auth.into()),
            ],
            body: b"",
        };
        assert!(verify(&keys, &req(auth)).is_ok());
        let bad = auth.replace("b97d", "b97e");
        assert_eq!(verify(&keys, &req(&bad)).unwrap_err().1, "SignatureDoesNotMatch");
        let other = auth.replace("AKIDEXAMPLE", "AKIDOTHER");
        assert_eq!(verify(&keys, &req(&other)).unwrap_err().1, "InvalidClientTokenId");
    }
}
