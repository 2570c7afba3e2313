// A real OpenID provider (panva's oidc-provider) for MASH's tests, on loopback only.
//
//   node tests/oidc/provider.mjs CONFIG.json
//
// CONFIG.json (written by tests/oidc_support.py):
//   port (of the issuer URL), listen_port (where it listens; default port: a test puts a
//   counting proxy on port), audience ("mash-exchange"), resource ("urn:mash-exchange"), access_token_ttl (s),
//   users: {login: {claims}} -- the claims go into ID tokens and access tokens as given,
//     so a test chooses the claim names (agency, role, team, groups, or others),
//   clients: [oidc-provider client metadata].
//   dpop (default true): false turns DPoP off, so tokens are never key-bound.
//   mtls (optional): {port, cert, key, ca} turns on RFC 8705 (features.mTLS): an HTTPS
//     listener on port (server cert/key PEM files) asks every client for a certificate,
//     verified against ca (tls_client_auth) or registered (self_signed_tls_client_auth);
//     discovery names it in mtls_endpoint_aliases, and tokens of clients with
//     tls_client_certificate_bound_access_tokens carry cnf.x5t#S256 of that certificate.
//
// Test-only routes, loopback: POST /__test/rotate (a new signing key, published first; the
// old one stays published unless ?drop=1) answers {"kid": NEW}; GET /__test/health.
// Prints one line "ready ISSUER" when it listens. The devInteractions login accepts a known
// login with any password (a test IdP: the point is the protocol, not the password).

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const cookieKeys = [randomBytes(32).toString('hex')];

function newKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' };
}

let keys = [newKey()];
const claimNames = [...new Set(Object.values(config.users).flatMap((u) => Object.keys(u.claims)))];

function userClaims(accountId) {
  const user = config.users[accountId];
  return user ? { ...user.claims } : undefined;
}

const mtls = config.mtls;
const mtlsBase = mtls ? `https://127.0.0.1:${mtls.port}` : '';

// The client certificate of an HTTPS (mTLS listener) request; none on plain HTTP.
function peerCertificate(ctx) {
  const { socket } = ctx.req;
  return typeof socket.getPeerX509Certificate === 'function'
    ? socket.getPeerX509Certificate() : undefined;
}

const mtlsFeature = mtls ? {
  enabled: true,
  certificateBoundAccessTokens: true,
  tlsClientAuth: true,
  selfSignedTlsClientAuth: true,
  getCertificate: peerCertificate,
  certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
  certificateSubjectMatches(ctx, property, expected) {
    const cert = peerCertificate(ctx);
    if (!cert) return false;
    switch (property) {
      case 'tls_client_auth_san_uri':
        return (cert.subjectAltName || '').split(', ').includes(`URI:${expected}`);
      case 'tls_client_auth_subject_dn':
        return cert.subject === expected;
      default:
        return false;
    }
  },
} : { enabled: false };

function build() {
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys },
    cookies: { keys: cookieKeys },
    pkce: { required: () => true },
    conformIdTokenClaims: false,
    clientAuthMethods: [
      'client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt', 'none',
      ...(mtls ? ['tls_client_auth', 'self_signed_tls_client_auth'] : []),
    ],
    discovery: mtls ? {
      mtls_endpoint_aliases: {
        token_endpoint: `${mtlsBase}/token`,
        device_authorization_endpoint: `${mtlsBase}/device/auth`,
        revocation_endpoint: `${mtlsBase}/token/revocation`,
      },
    } : {},
    claims: { openid: ['sub', ...claimNames] },
    scopes: ['openid', 'offline_access', 'lookup'],
    ttl: {
      AccessToken: config.access_token_ttl,
      IdToken: config.access_token_ttl,
      DeviceCode: 300,
      RefreshToken: 3600,
    },
    features: {
      devInteractions: { enabled: true },
      // dpop: false plays a provider that ignores DPoP (issues Bearer tokens, no cnf.jkt)
      dPoP: { enabled: config.dpop !== false },
      mTLS: mtlsFeature,
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== config.resource) throw new Error(`unknown resource ${indicator}`);
          return {
            scope: 'lookup',
            audience: config.audience,
            accessTokenTTL: config.access_token_ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    async findAccount(ctx, id) {
      const claims = userClaims(id);
      if (!claims) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
    },
    async extraTokenClaims(ctx, token) {
      return token.accountId ? userClaims(token.accountId) : undefined;
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
  });
  if (mtls) {
    // the mTLS listener's requests are the issuer's own: the URLs the provider makes from
    // them (the device flow's verification_uri) are on the issuer's URL, not the listener's
    provider.middleware.unshift(async (ctx, next) => {
      if (ctx.req.socket.encrypted) {
        Object.defineProperty(ctx.request, 'protocol', { value: 'http' });
        Object.defineProperty(ctx.request, 'host', { value: `127.0.0.1:${config.port}` });
      }
      await next();
    });
  }
  return provider;
}

let current = build();

const server = http.createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/__test/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kids: keys.map((k) => k.kid) }));
    return;
  }
  if (url.pathname === '/__test/rotate' && req.method === 'POST') {
    const fresh = newKey();
    keys = url.searchParams.get('drop') === '1' ? [fresh] : [fresh, ...keys];
    current = build();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: fresh.kid }));
    return;
  }
  current.callback()(req, res);
});

function listening(srv, port) {
  return new Promise((resolve) => { srv.listen(port, '127.0.0.1', resolve); });
}

const started = [listening(server, config.listen_port ?? config.port)];
if (mtls) {
  const secure = https.createServer({
    cert: readFileSync(mtls.cert),
    key: readFileSync(mtls.key),
    ca: readFileSync(mtls.ca),
    requestCert: true,
    rejectUnauthorized: false, // self_signed_tls_client_auth; tls_client_auth checks authorized
  }, (req, res) => current.callback()(req, res));
  started.push(listening(secure, mtls.port));
}

Promise.all(started).then(() => {
  process.stdout.write(`ready ${issuer}\n`);
});
