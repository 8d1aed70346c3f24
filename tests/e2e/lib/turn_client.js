// A minimal TURN client (RFC 5766 / RFC 8656 over UDP), enough to ask a real coturn what it
// allows: an Allocate with long-term credentials (the nonce dance included) and a
// CreatePermission towards a peer. For the tests that show coturn refuses expired and forged
// credentials and relays only to the media nodes; the browser's own TURN client does the rest.
// Also one ICE connectivity check (`iceCheck`): a STUN binding request with ICE's short-term
// credentials, to show the media node answers a live ufrag and ignores one an ICE restart retired.
//
// Not here: relaying data (Send/Data indications, channels), TCP or TLS transports.

import { createSocket } from 'node:dgram';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const MAGIC = 0x2112a442;
const ATTR = {
  USERNAME: 0x0006, MESSAGE_INTEGRITY: 0x0008, ERROR_CODE: 0x0009, XOR_PEER_ADDRESS: 0x0012,
  REALM: 0x0014, NONCE: 0x0015, XOR_RELAYED_ADDRESS: 0x0016, REQUESTED_TRANSPORT: 0x0019,
  PRIORITY: 0x0024, FINGERPRINT: 0x8028, ICE_CONTROLLING: 0x802a,
};
const METHOD = { BINDING: 0x0001, ALLOCATE: 0x0003, CREATE_PERMISSION: 0x0008 };

/**
 * @param {number} type
 * @param {Buffer} value
 */
function attr(type, value) {
  const pad = (4 - (value.length % 4)) % 4;
  const b = Buffer.alloc(4 + value.length + pad);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

/**
 * A request; with `key`, a MESSAGE-INTEGRITY over it (RFC 5389 §15.4).
 * @param {number} method
 * @param {Buffer[]} attrs
 * @param {Buffer|null} key
 */
function request(method, attrs, key) {
  const tx = randomBytes(12);
  const body = Buffer.concat(attrs);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(method, 0);
  header.writeUInt32BE(MAGIC, 4);
  tx.copy(header, 8);
  if (!key) {
    header.writeUInt16BE(body.length, 2);
    return { tx, bytes: Buffer.concat([header, body]) };
  }
  header.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', key).update(Buffer.concat([header, body])).digest();
  return { tx, bytes: Buffer.concat([header, body, attr(ATTR.MESSAGE_INTEGRITY, mac)]) };
}

/**
 * @param {Buffer} b
 * @returns {{cls: 'success'|'error'|'other', tx: Buffer, attrs: Map<number, Buffer>}}
 */
function parse(b) {
  const type = b.readUInt16BE(0);
  const len = b.readUInt16BE(2);
  const cls = (type & 0x0110) === 0x0100 ? 'success' : (type & 0x0110) === 0x0110 ? 'error' : 'other';
  const attrs = new Map();
  for (let off = 20; off + 4 <= 20 + len;) {
    const t = b.readUInt16BE(off);
    const l = b.readUInt16BE(off + 2);
    attrs.set(t, b.subarray(off + 4, off + 4 + l));
    off += 4 + l + ((4 - (l % 4)) % 4);
  }
  return { cls, tx: b.subarray(8, 20), attrs };
}

/**
 * @param {string} ip
 * @param {number} port
 */
function xorAddress(ip, port) {
  const v = Buffer.alloc(8);
  v.writeUInt8(0x01, 1);
  v.writeUInt16BE(port ^ (MAGIC >>> 16), 2);
  const n = ip.split('.').reduce((a, x) => (a << 8) + Number(x), 0) >>> 0;
  v.writeUInt32BE((n ^ MAGIC) >>> 0, 4);
  return v;
}

/** @param {Buffer} v */
function readXorAddress(v) {
  const port = v.readUInt16BE(2) ^ (MAGIC >>> 16);
  const n = (v.readUInt32BE(4) ^ MAGIC) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}:${port}`;
}

/**
 * The outcome of one request: `ok`, or the error code and reason.
 * @typedef {{ok: true, relayed?: string} | {ok: false, code: number, reason: string}} Outcome
 */

/** @param {ReturnType<typeof parse>} m @returns {Outcome} */
function outcome(m) {
  if (m.cls === 'success') {
    const r = m.attrs.get(ATTR.XOR_RELAYED_ADDRESS);
    return { ok: true, relayed: r ? readXorAddress(r) : undefined };
  }
  const e = m.attrs.get(ATTR.ERROR_CODE);
  if (!e) return { ok: false, code: 0, reason: 'no ERROR-CODE' };
  return { ok: false, code: (e.readUInt8(2) & 7) * 100 + e.readUInt8(3), reason: e.subarray(4).toString('utf8') };
}

/** A TURN client on one UDP socket, talking to one server. */
export class TurnClient {
  /**
   * @param {{server: string, port: number, localIp?: string}} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.socket = createSocket('udp4');
    /** @type {Map<string, (m: ReturnType<typeof parse>) => void>} */
    this.waiting = new Map();
    this.socket.on('message', (b) => {
      if (b.length < 20) return;
      const m = parse(b);
      const w = this.waiting.get(m.tx.toString('hex'));
      if (w) w(m);
    });
    /** @type {Buffer|null} */
    this.key = null;
    /** @type {{username: string, realm: Buffer, nonce: Buffer}|null} */
    this.auth = null;
  }

  async open() {
    await new Promise((res, rej) => {
      this.socket.once('error', rej);
      this.socket.bind(0, this.opts.localIp || '127.0.0.1', () => res(undefined));
    });
  }

  close() {
    this.socket.close();
  }

  /**
   * Send a request and wait for its answer (retransmitting, as STUN over UDP does).
   * @param {{tx: Buffer, bytes: Buffer}} req
   * @returns {Promise<ReturnType<typeof parse>>}
   */
  async exchange(req) {
    const id = req.tx.toString('hex');
    try {
      return await new Promise((res, rej) => {
        this.waiting.set(id, res);
        let tries = 0;
        const send = () => {
          if (tries++ >= 7) {
            clearInterval(timer);
            rej(new Error(`no answer from TURN ${this.opts.server}:${this.opts.port}`));
            return;
          }
          this.socket.send(req.bytes, this.opts.port, this.opts.server);
        };
        const timer = setInterval(send, 500);
        this.waiting.set(id, (m) => { clearInterval(timer); res(m); });
        send();
      });
    } finally {
      this.waiting.delete(id);
    }
  }

  /**
   * Allocate a UDP relay with `username` and `password` (the TURN REST credential).
   * @param {string} username
   * @param {string} password
   * @returns {Promise<Outcome>}
   */
  async allocate(username, password) {
    const transport = attr(ATTR.REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0]));
    const first = await this.exchange(request(METHOD.ALLOCATE, [transport], null));
    const o = outcome(first);
    if (o.ok || o.code !== 401) return o;
    const realm = first.attrs.get(ATTR.REALM);
    const nonce = first.attrs.get(ATTR.NONCE);
    if (!realm || !nonce) return { ok: false, code: 401, reason: 'no realm or nonce in the challenge' };
    this.key = createHash('md5').update(`${username}:${realm.toString('utf8')}:${password}`).digest();
    this.auth = { username, realm, nonce };
    return outcome(await this.exchange(request(METHOD.ALLOCATE, [transport, ...this.authAttrs()], this.key)));
  }

  authAttrs() {
    if (!this.auth) throw new Error('allocate first');
    return [
      attr(ATTR.USERNAME, Buffer.from(this.auth.username, 'utf8')),
      attr(ATTR.REALM, this.auth.realm),
      attr(ATTR.NONCE, this.auth.nonce),
    ];
  }

  /**
   * Ask the allocation to permit `peerIp` (the relay sends nothing to a peer without one).
   * @param {string} peerIp
   * @returns {Promise<Outcome>}
   */
  async createPermission(peerIp) {
    const peer = attr(ATTR.XOR_PEER_ADDRESS, xorAddress(peerIp, 9));
    return outcome(await this.exchange(request(METHOD.CREATE_PERMISSION, [peer, ...this.authAttrs()], this.key)));
  }
}

/**
 * One ICE connectivity check (RFC 8445 §7.2.2) from `localIp` to a media node, as the peer whose
 * ICE username fragment is `peerUfrag` would send it: a binding request with USERNAME
 * `{ufrag}:{peerUfrag}`, PRIORITY, ICE-CONTROLLING (no USE-CANDIDATE: it never moves
 * a session's path), MESSAGE-INTEGRITY keyed by the ICE password and FINGERPRINT. True when a
 * success answer arrives within a second and a half (a few retransmissions), false otherwise.
 * @param {{server: string, port: number, localIp: string, ufrag: string, pwd: string, peerUfrag: string}} o
 * @returns {Promise<boolean>}
 */
export async function iceCheck(o) {
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(1 << 24);
  const { tx, bytes } = request(METHOD.BINDING, [
    attr(ATTR.USERNAME, Buffer.from(`${o.ufrag}:${o.peerUfrag}`, 'utf8')),
    attr(ATTR.PRIORITY, priority),
    attr(ATTR.ICE_CONTROLLING, randomBytes(8)),
  ], Buffer.from(o.pwd, 'utf8'));
  // FINGERPRINT last: the length counts it, the CRC covers everything before it.
  bytes.writeUInt16BE(bytes.readUInt16BE(2) + 8, 2);
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE((crc32(bytes) ^ 0x5354554e) >>> 0);
  const message = Buffer.concat([bytes, attr(ATTR.FINGERPRINT, fp)]);
  const socket = createSocket('udp4');
  await new Promise((res, rej) => {
    socket.once('error', rej);
    socket.bind(0, o.localIp, () => res(undefined));
  });
  try {
    return await new Promise((res) => {
      let tries = 0;
      const timer = setInterval(() => {
        if (tries++ >= 3) {
          clearInterval(timer);
          res(false);
        } else socket.send(message, o.port, o.server);
      }, 500);
      socket.on('message', (b) => {
        if (b.length < 20 || !b.subarray(8, 20).equals(tx)) return;
        clearInterval(timer);
        res(parse(b).cls === 'success');
      });
      socket.send(message, o.port, o.server);
    });
  } finally {
    socket.close();
  }
}
