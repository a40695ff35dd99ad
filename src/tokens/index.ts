/** The tokens area's public exports, re-exported by src/index.ts. */
export { base64Decode, base64Encode, bytesToInt, intToBytes, wantBytes } from './encoding.js';
export type { StrOrBytes } from './encoding.js';
export { COMPACT_JSON, STDLIB_JSON, pythonJsonDumps, pythonJsonLoads } from './json.js';
export type { PythonJsonOptions } from './json.js';
export { Signer } from './signer.js';
export type { DigestMethod, KeyDerivation, SecretKeys, SignerOptions } from './signer.js';
export { Serializer, stdlibJson } from './serializer.js';
export type { PayloadSerializer, SaltOption, SerializerOptions, SignerClass, SignerClassOptions } from './serializer.js';
export { TimedSerializer, TimestampSigner } from './timed.js';
export type { TimedLoadsOptions, TimestampSignerOptions, UnsignOptions } from './timed.js';
export { URLSafeSerializer, URLSafeTimedSerializer, compactJson } from './url-safe.js';
export type { URLSafeSerializerOptions } from './url-safe.js';
export { AUTH_TICKET_SALT, AuthTickets, makeAuthTicket, verifyAuthTicket } from './tickets.js';
export type { AuthTicketFunctionOptions, AuthTicketInfo, AuthTicketsOptions, MakeAuthTicketOptions, UserId } from './tickets.js';
export { MemoryTokenStore } from './token-store.js';
export type { AccessRecord, MemoryTokenStoreOptions, TokenStore } from './token-store.js';
export { RedisTokenStore } from './redis-token-store.js';
export type { RedisTokenStoreOptions } from './redis-token-store.js';
export { REFRESH_TOKEN_SALT, TokenService, canonicalId } from './token-service.js';
export type { AccessInfo, Account, AccountId, AccountLookup, IssueOptions, TokenPair, TokenServiceOptions } from './token-service.js';
export { SecurityContext } from './security-context.js';
export type { CredentialKind, RoleGrant, RoleLookup, SecurityAccount, SecurityContextInit } from './security-context.js';
export { authorize, checkRoles, requireRole } from './authorize.js';
// RoleHolder stays unexported here: the wire's rpc.ts exports the same structural interface under that name.
export type { AuthorizeEntry, AuthorizedTable, RequiredRoles, SecuredContext, SecuredHandler } from './authorize.js';
