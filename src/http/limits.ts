// Limits every entry point applies the same way (the API, and the gateway in front of it).

/** Largest request body accepted (413 validation.error beyond it). */
export const MAX_BODY_BYTES = 1024 * 1024;
