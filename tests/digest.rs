//! The values digest in the marker: lower-case hex sha256 of the values'
//! canonical JSON, as `sha256sum` prints it.

#[test]
fn values_digest_is_the_sha256_of_the_json_text() {
    let json = serde_json::json!({"b": [1, "x"], "a": null});
    assert_eq!(
        serde_json::to_string(&json).unwrap(),
        r#"{"b":[1,"x"],"a":null}"#
    );
    // python3 -c 'import hashlib; print(hashlib.sha256(b"{\"b\":[1,\"x\"],\"a\":null}").hexdigest())'
    assert_eq!(
        meshgen::values_digest(&json),
        "sha256:d5545c824e9e6414ba5258c4ffedd7ae16c2362d0be6cfa8e4c03cf930ca1d8f"
    );
}
