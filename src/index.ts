/**
 * tulipwire: the PEP 3156 (asyncio, "Tulip") model for Node.js over raw TLS.
 *
 * This is the one public entry point; every area has a barrel of its own, re-exported here by name.
 */
export * from './errors.js';
export * from './constants.js';
