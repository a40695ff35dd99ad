/** The wire area's public exports (framing, codec, envelope, keys, MACs, MessageProtocol), re-exported by src/index.ts. */
export { FRAME_HEADER_SIZE, FrameDecoder, encodeFrame } from './frames.js';
export type { FrameDecoderOptions, FrameSink } from './frames.js';
export { MAX_DEPTH, MAX_NODES, PACKR_OPTIONS, UNPACKR_OPTIONS, checkShape, decode, encode } from './codec.js';
export type { DecodeOptions } from './codec.js';
