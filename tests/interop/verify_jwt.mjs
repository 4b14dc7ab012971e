// Verifies an access token against the provider's published JWKS with `jose`
// (panva/jose), a JOSE library Tessera does not use. Usage:
//   node verify_jwt.mjs JWKS_URL TOKEN ISSUER AUDIENCE
// Prints the verified claims as JSON and exits 0, or prints the error and exits 1.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksUrl, token, issuer, audience] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksUrl));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: "at+jwt",
    algorithms: ["ES256", "RS256", "EdDSA"],
  });
  console.log(JSON.stringify({ header: protectedHeader, claims: payload }));
} catch (err) {
  console.error(`${err.code ?? "ERR"}: ${err.message}`);
  process.exit(1);
}
