//! Endpoint paths, shared by the router and the discovery document so the two cannot
//! disagree.

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const JWKS: &str = "/.well-known/jwks.json";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const TOKEN: &str = "/oauth2/token";
pub const REVOKE: &str = "/oauth2/revoke";
pub const INTROSPECT: &str = "/oauth2/introspect";
pub const REVOCATIONS: &str = "/oauth2/revocations";
/// Where verifiers check a partner API key once (client-authenticated, as introspection).
pub const API_KEY_CHECK: &str = "/oauth2/api-keys/check";
/// A signed-in user's own API keys.
pub const ACCOUNT_API_KEYS: &str = "/auth/api-keys";
pub const ACCOUNT_API_KEY: &str = "/auth/api-keys/{id}";
pub const SESSIONS: &str = "/auth/sessions";
pub const SESSION: &str = "/auth/sessions/{id}";
pub const LOGOUT: &str = "/auth/logout";
pub const SESSION_EXTEND: &str = "/auth/session/extend";
/// The caller's session lifetimes, for the embeddable session-expiry warning.
pub const SESSION_STATUS: &str = "/auth/session";
/// A signed-in user asks to change their e-mail address (confirmed from the new one).
pub const EMAIL_CHANGE: &str = "/auth/email";
pub const EMAIL_CHANGE_CONFIRM: &str = "/auth/email/confirm";
/// The account pages' list of the user's sessions (the new-sign-in e-mail links to it).
pub const ACCOUNT_SESSIONS_PAGE: &str = "/account/sessions";
pub const SIGNUP: &str = "/auth/signup";
pub const VERIFY_EMAIL: &str = "/auth/verify-email";
pub const LOGIN: &str = "/auth/login";
pub const REISSUE: &str = "/auth/reissue";
pub const ME: &str = "/auth/me";
/// The signed-in user's profile (OIDC standard claims): `GET`, `PATCH` (JSON merge patch).
pub const PROFILE: &str = "/auth/profile";
pub const MEMBER_ME: &str = "/api/member/me";
pub const PASSWORD_FORGOT: &str = "/auth/password/forgot";
pub const PASSWORD_RESET: &str = "/auth/password/reset";
pub const PASSWORD_CHANGE: &str = "/auth/password/change";
/// The "end that session" link of a new sign-in e-mail: `GET` shows a confirmation, `POST` ends it.
pub const END_SIGN_IN: &str = "/auth/sign-in/end";
/// The second step of a login that answered `mfa_required`.
pub const MFA_VERIFY: &str = "/auth/mfa/verify";
/// The signed-in user's second factors.
pub const MFA: &str = "/auth/mfa";
pub const MFA_FACTOR: &str = "/auth/mfa/{id}";
pub const MFA_TOTP: &str = "/auth/mfa/totp";
pub const MFA_TOTP_CONFIRM: &str = "/auth/mfa/totp/confirm";
pub const MFA_RECOVERY_CODES: &str = "/auth/mfa/recovery-codes";
/// Sends the code of an e-mail factor for a pending sign-in.
pub const MFA_CHALLENGE: &str = "/auth/mfa/challenge";
pub const MFA_EMAIL: &str = "/auth/mfa/email";
pub const MFA_EMAIL_CONFIRM: &str = "/auth/mfa/email/confirm";
pub const MFA_SMS: &str = "/auth/mfa/sms";
pub const MFA_SMS_CONFIRM: &str = "/auth/mfa/sms/confirm";
pub const MFA_WEBAUTHN: &str = "/auth/mfa/webauthn";
/// Enrolling an authenticator app during a sign-in that must enrol one.
pub const MFA_ENROL_TOTP: &str = "/auth/mfa/enrol/totp";
pub const MFA_WEBAUTHN_CONFIRM: &str = "/auth/mfa/webauthn/confirm";
/// Usernameless sign-in with a passkey: options, then the assertion.
pub const PASSKEY_OPTIONS: &str = "/auth/passkey/options";
pub const PASSKEY_LOGIN: &str = "/auth/passkey/login";
pub const AUTHORIZE: &str = "/oauth2/authorize";
pub const AUTHORIZE_LOGIN: &str = "/oauth2/authorize/login";
pub const AUTHORIZE_CONSENT: &str = "/oauth2/authorize/consent";
/// The hosted second-factor form that follows the login form.
pub const AUTHORIZE_MFA: &str = "/oauth2/authorize/mfa";
/// The hosted login's passkey button: options (JSON), then the signed form.
pub const AUTHORIZE_PASSKEY_OPTIONS: &str = "/oauth2/authorize/passkey/options";
pub const AUTHORIZE_PASSKEY: &str = "/oauth2/authorize/passkey";
pub const USERINFO: &str = "/oauth2/userinfo";
/// Federated sign-in: the login page's button for provider `{id}` leads here…
pub const FEDERATION_START: &str = "/federation/{id}/start";
/// …and the upstream sends the browser back here.
pub const FEDERATION_CALLBACK: &str = "/federation/{id}/callback";
/// The hosted page where a user proves an existing account before an upstream identity is
/// linked to it.
pub const FEDERATION_LINK: &str = "/federation/link";
/// A signed-in user's linked upstream identities (first-party JSON API).
pub const ACCOUNT_IDENTITIES: &str = "/auth/identities";
pub const ACCOUNT_IDENTITY: &str = "/auth/identities/{provider}/{subject}";
/// The device authorization endpoint (RFC 8628 §3.1).
pub const DEVICE_AUTHORIZATION: &str = "/oauth2/device_authorization";
/// The pushed authorization request endpoint (RFC 9126 §2).
pub const PAR: &str = "/oauth2/par";
/// The hosted page where a user enters a device's user code (RFC 8628 §3.3).
pub const DEVICE: &str = "/device";
pub const END_SESSION: &str = "/oauth2/logout";
pub const LOGOUT_CONFIRM: &str = "/oauth2/logout/confirm";
pub const ADMIN_CLIENTS: &str = "/admin/clients";
pub const ADMIN_CLIENT: &str = "/admin/clients/{id}";
pub const ADMIN_CLIENT_SECRET: &str = "/admin/clients/{id}/secret";
pub const ADMIN_AUDIT: &str = "/admin/audit";
pub const ADMIN_USERS: &str = "/admin/users";
pub const ADMIN_USER: &str = "/admin/users/{id}";
pub const ADMIN_USER_DISABLE: &str = "/admin/users/{id}/disable";
pub const ADMIN_USER_ENABLE: &str = "/admin/users/{id}/enable";
pub const ADMIN_USER_SESSIONS: &str = "/admin/users/{id}/sessions";
pub const ADMIN_USER_PROFILE: &str = "/admin/users/{id}/profile";
pub const ADMIN_USER_MFA: &str = "/admin/users/{id}/mfa";
pub const ADMIN_USER_ROLES: &str = "/admin/users/{id}/roles";
pub const ADMIN_ROLES: &str = "/admin/roles";
pub const ADMIN_ROLE: &str = "/admin/roles/{name}";
pub const ADMIN_SOD: &str = "/admin/sod";
pub const ADMIN_SOD_RULE: &str = "/admin/sod/{id}";
pub const ADMIN_AUTHZ_CHECK: &str = "/admin/authz/check";
pub const ADMIN_SESSION: &str = "/admin/sessions/{sid}";
pub const ADMIN_KEYS: &str = "/admin/keys";
pub const ADMIN_API_KEYS: &str = "/admin/api-keys";
pub const ADMIN_API_KEY: &str = "/admin/api-keys/{id}";
pub const ADMIN_KEYS_ROTATE: &str = "/admin/keys/rotate";
/// The admin API's OpenAPI 3.1 document (no token needed: it holds no secret).
pub const ADMIN_OPENAPI: &str = "/admin/openapi.json";
pub const METRICS: &str = "/metrics";
