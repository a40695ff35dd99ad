/** The wire area's public exports (framing, codec, envelope, keys, MACs, nonce stores, MessageProtocol), re-exported by src/index.ts. */
export { FRAME_HEADER_SIZE, FrameDecoder, encodeFrame } from './frames.js';
export type { FrameDecoderOptions, FrameSink } from './frames.js';
export { MAX_DEPTH, MAX_NODES, PACKR_OPTIONS, UNPACKR_OPTIONS, checkShape, decode, encode } from './codec.js';
export type { DecodeOptions, EncodeOptions } from './codec.js';
export {
  ENVELOPE_VERSION, FLAG_TLS_BOUND, HEADER_FIXED_SIZE, KIND, MIN_ENVELOPE_SIZE, NONCE_SIZE, envelopeSize, parseHeader,
  writeHeader,
} from './envelope.js';
export type { EnvelopeHeader, HeaderFields } from './envelope.js';
export {
  DIRECTION_LABELS, Keyring, MAX_KID_SIZE, MIN_SECRET_SIZE, TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH, deriveDirectionKey,
} from './keyring.js';
export type { Direction, KeyEntry, KeyOptions } from './keyring.js';
export { TAG_SIZE, nodeMac } from './mac.js';
export type { MacEngine, MacEngineName, MacKey } from './mac.js';
export { JS_MAC_MAX_INLINE, jsMac } from './mac-js.js';
export { NATIVE_ADDON_PATH, defaultMacEngine, nativeDisabledByEnv, nativeMac, nativeMacUnavailableReason } from './mac-native.js';
export { KeySchedule, NoncePool, Opener, ReplayWindow, Sealer, noncePool, randomNonce, sealEnvelope } from './signing.js';
export type {
  AcceptSink, DerivedKey, EnvelopeInput, KeyScheduleOptions, MessageMeta, OpenerOptions, RejectSink, SealerOptions,
} from './signing.js';
export * from './stores.js';
export { EOF_TIMEOUT, MAX_MESSAGE_TTL, MAX_PENDING_RESERVATIONS, MessageProtocol, consoleWireLogger } from './message-protocol.js';
export type { MessageProtocolOptions, MessageStats, RejectionError, SendOptions, WireLogger } from './message-protocol.js';
export * from './rpc.js';
export * from './idempotency.js';
