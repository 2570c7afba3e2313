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
//
// Test-only routes, loopback: POST /__test/rotate (a new signing key, published first; the
// old one stays published unless ?drop=1) answers {"kid": NEW}; GET /__test/health.
// Prints one line "ready ISSUER" when it listens. The devInteractions login accepts a known
// login with any password (a test IdP: the point is the protocol, not the password).

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

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

function build() {
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys },
    cookies: { keys: cookieKeys },
    pkce: { required: () => true },
    conformIdTokenClaims: false,
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

server.listen(config.listen_port ?? config.port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
