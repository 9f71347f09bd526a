//! Path ids are percent-decoded exactly once (SG-ID-3): axum's router decodes
//! each segment, and nothing decodes it again. The property test sends
//! random valid ids (spaces, `%`, `+`, non-ASCII included) through the typed
//! client, which percent-encodes every segment, and reads them back.

use crate::helpers::*;
use proptest::prelude::*;
use reqwest::Method;
use supergroup_protocol::rest::UserUpsert;

#[tokio::test]
async fn an_encoded_percent_sign_addresses_the_id_with_the_percent_sign_sg_id_3() {
    let app = spawn_app().await;
    // The client sends `users/50%2541`: the user is `50%41`, not `50A`.
    app.rest.put_user("50%41", &UserUpsert { name: Some("percent".into()), ..Default::default() }).await.unwrap();
    assert_eq!(app.rest.get_user("50%41").await.unwrap().id, "50%41");
    expect_api_error(app.rest.get_user("50A").await, 404, "user_not_found");
    // `a%2Fb` is the id `a/b`, which breaks the id rule; `a%252Fb` is the valid id `a%2Fb`.
    let slash = app.rest.raw(Method::GET, "/users/a%2Fb", None, Some(SECRET)).await.unwrap();
    expect_raw_error(slash, 400, "invalid_id");
    app.rest.put_user("a%2Fb", &UserUpsert::default()).await.unwrap();
    let percent = app.rest.raw(Method::GET, "/users/a%252Fb", None, Some(SECRET)).await.unwrap();
    assert_eq!(percent.0, 200, "{percent:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_path_id_that_decodes_to_invalid_utf8_is_invalid_id_sg_id_3() {
    let app = spawn_app().await;
    for path in ["/users/%FF", "/users/ok%C3", "/conversations/%FE%FF/messages"] {
        let answer = app.rest.raw(Method::GET, path, None, Some(SECRET)).await.unwrap();
        expect_raw_error(answer, 400, "invalid_id");
    }
    app.stop().await;
}

/// Valid ids: 1 to 40 characters from a mix that needs encoding (space, `%`,
/// `+`, `?`, `#`, non-ASCII), never `/` or a control character.
fn valid_id() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('a', 'z'),
            Just(' '),
            Just('%'),
            Just('+'),
            Just('?'),
            Just('#'),
            Just('.'),
            Just('é'),
            Just('✓'),
            Just('😀'),
        ],
        1..40,
    )
    .prop_map(|cs| cs.into_iter().collect::<String>())
    .prop_filter("`.` and `..` are path steps, not ids", |s| s != "." && s != "..")
}

#[test]
fn any_valid_id_survives_encode_request_decode_sg_id_3() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let config = ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(id in valid_id())| {
        let got = rt.block_on(async {
            app.rest.put_user(&id, &UserUpsert { name: Some(id.clone()), ..Default::default() }).await?;
            app.rest.get_user(&id).await
        });
        let user = got.map_err(|e| TestCaseError::fail(format!("{id:?}: {e}")))?;
        prop_assert_eq!(&user.id, &id);
        prop_assert_eq!(user.name.as_deref(), Some(id.as_str()));
    });
    rt.block_on(app.stop());
}
