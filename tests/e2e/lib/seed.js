// The people, robots and bookings a spec starts from, made through the HTTP API the way an admin
// and the doctors would (no SQL, no back doors). One call per spec:
//
//   const world = await seed(server, {
//     users: { dana: ['Dr Dana Okafor', 'doctor'], sam: ['Sam Student', 'student'] },
//     robots: { r1: ['Rounds-1', 'Cardiology 3B', 'Tablet robot'] },
//     bookings: { now: { robot: 'r1', doctor: 'dana', from: Date.now() - 30_000, minutes: 60, observers: ['sam'] } },
//   });
//   world.users.dana.id, world.users.dana.api (logged in), world.robots.r1.credential, world.bookings.now.id
//
// Everyone gets the same password (PASSWORD), so the browser login helper needs only a username.
//
// Not here: the server itself (server.js), logging in through the UI (browser.js `login`).

import { iso, ADMIN_USERNAME, ADMIN_PASSWORD } from './server.js';

/** Password of every seeded user. */
export const PASSWORD = 'correct-horse-battery';

/**
 * @typedef {object} BookingSpec
 * @property {string} robot key in `robots`
 * @property {string} doctor key in `users`: the booking's doctor, who makes it
 * @property {number} from start, ms since the epoch (whole seconds are kept)
 * @property {number} minutes length
 * @property {string} [note]
 * @property {string[]} [consultants] keys in `users` (doctors)
 * @property {string[]} [observers] keys in `users` (students)
 */

/**
 * @typedef {object} SeedSpec
 * @property {Record<string, [string, 'doctor'|'student'|'admin']>} [users] username -> [display name, role]
 * @property {Record<string, [string, string, string?]>} [robots] key -> [name, ward, description]
 * @property {Record<string, BookingSpec>} [bookings]
 */

/**
 * @typedef {object} SeededUser
 * @property {string} id
 * @property {string} username
 * @property {string} displayName
 * @property {string} role
 * @property {import('./server.js').ApiUser} api logged in through the API
 */

/**
 * @param {import('./server.js').Server} server
 * @param {SeedSpec} spec
 */
export async function seed(server, spec) {
  const admin = await server.login(ADMIN_USERNAME, ADMIN_PASSWORD);
  /** @type {Record<string, SeededUser>} */
  const users = {};
  for (const [username, [displayName, role]] of Object.entries(spec.users || {})) {
    const u = await admin.createUser(username, displayName, role, PASSWORD);
    users[username] = { id: u.id, username, displayName, role, api: await server.login(username, PASSWORD) };
  }
  /** @type {Record<string, {id: string, name: string, credential: string}>} */
  const robots = {};
  for (const [key, [name, ward, description]] of Object.entries(spec.robots || {})) {
    const { robot, credential } = await admin.createRobot(name, ward, description || '');
    robots[key] = { id: robot.id, name: robot.name, credential };
  }
  /** @type {Record<string, any>} */
  const bookings = {};
  for (const [key, b] of Object.entries(spec.bookings || {})) {
    const doctor = users[b.doctor];
    if (!doctor) throw new Error(`booking ${key}: unknown doctor ${b.doctor}`);
    const robot = robots[b.robot];
    if (!robot) throw new Error(`booking ${key}: unknown robot ${b.robot}`);
    let booking = await doctor.api.call('POST', '/api/bookings', {
      robot_id: robot.id,
      starts_at: iso(b.from),
      ends_at: iso(b.from + b.minutes * 60_000),
      ...(b.note ? { note: b.note } : {}),
    });
    for (const [role, who] of /** @type {const} */ ([['consultant', b.consultants], ['observer', b.observers]])) {
      for (const name of who || []) {
        const u = users[name];
        if (!u) throw new Error(`booking ${key}: unknown ${role} ${name}`);
        booking = await doctor.api.call('POST', `/api/bookings/${booking.id}/invitations`, { user_id: u.id, role });
      }
    }
    bookings[key] = booking;
  }
  return { admin, users, robots, bookings };
}
