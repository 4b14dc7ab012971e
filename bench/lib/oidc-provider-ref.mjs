// The reference identity provider of bench/compare.sh: Node `oidc-provider` (OpenID
// Certified; the version pinned in tests/interop/package.json) with its default in-memory
// adapter, one confidential client allowed `client_credentials`, and access tokens issued
// as ES256 JWTs (RFC 9068, through resource indicators) — the same work Tessera's token
// endpoint does for `client_credentials` with Basic authentication.
//
// Usage: node bench/lib/oidc-provider-ref.mjs '{"port": N, "client_id": "...", "client_secret": "...", "resource": "https://api.example"}'
// Prints {"issuer": "http://127.0.0.1:PORT"} on one line once it listens; runs until killed.

import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The packages live in tests/interop (installed by `npm ci` there).
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../tests/interop/package.json'));
const { default: Provider } = await import(require.resolve('oidc-provider'));
const jose = await import(require.resolve('jose'));

const config = JSON.parse(process.argv[2] ?? '{}');
const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

const server = http.createServer();
server.listen(config.port ?? 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: config.client_id,
        client_secret: config.client_secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [jwk] },
    scopes: ['api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: config.resource,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
