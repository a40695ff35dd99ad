/** The loop area's public exports, re-exported by src/index.ts. */
export * from './clock.js';
