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
