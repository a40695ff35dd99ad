/** The session area's public exports, re-exported by src/index.ts. */
export {};
