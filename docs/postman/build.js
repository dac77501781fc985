// `make postman`: docs/postman/collection.json and environment.json from schema.yaml.
//
// openapi-to-postmanv2 turns every operation of schema.yaml into a request ("All operations", by
// path); then the documented flow is copied from those requests, in order, with test scripts
// that check each answer and carry the codes and tokens to the next request ("Walkthrough").
// newman runs the walkthrough against a live server (tests/docs/test_postman.py, via .ci/run).
//
// The output is the same for the same schema (committed, checked for drift): the converter's
// random example values come from a seeded generator; its random ids and faked example answers
// are left out.
"use strict";

const fs = require("fs");
const path = require("path");

let seed = 22;
Math.random = () => {
  // mulberry32: a small seeded generator, so the converter's examples are the same every run.
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const converter = require("openapi-to-postmanv2");

const here = __dirname;
const schemaFile = process.argv[2] || path.join(here, "..", "..", "schema.yaml");
const outDir = process.argv[3] || here;

// The walkthrough: [name, method, path, body, pre-request script, test script]. Phones are new on
// every run (+7 999 111-NN-NN, the user; +7 999 222-NN-NN, the inviter); fake delivery (make run)
// returns the login code in the signup answer.
const json = "const body = pm.response.json();";
const steps = [
  [
    "1. the inviter asks for a code",
    "POST",
    "/api/v1/auth/signup/",
    { phone: "{{inviter_phone}}" },
    [
      "const n = String(Math.floor(1000 + Math.random() * 9000));",
      'pm.environment.set("inviter_phone", "+7999222" + n);',
      'pm.environment.set("phone", "+7999111" + n);',
    ],
    [
      json,
      'pm.test("200 with the phone in E.164", () => {',
      "  pm.response.to.have.status(200);",
      '  pm.expect(body.phone).to.eql(pm.environment.get("inviter_phone"));',
      "});",
      'pm.test("fake delivery returns the code", () => pm.expect(body.confirmation_code).to.match(/^\\d{4}$/));',
      'pm.environment.set("inviter_code", body.confirmation_code);',
    ],
  ],
  [
    "2. the inviter logs in",
    "POST",
    "/api/v1/auth/token/",
    { phone: "{{inviter_phone}}", confirmation_code: "{{inviter_code}}" },
    [],
    [
      json,
      'pm.test("200 with a token pair", () => {',
      "  pm.response.to.have.status(200);",
      "  pm.expect(body.token).to.be.a('string');",
      "  pm.expect(body.refresh).to.be.a('string');",
      "});",
      'pm.environment.set("inviter_token", body.token);',
    ],
  ],
  [
    "3. the inviter's profile: their referral code",
    "GET",
    "/api/v1/my_profile/",
    null,
    [],
    [
      json,
      'pm.test("200 with one profile and a 6-character code", () => {',
      "  pm.response.to.have.status(200);",
      "  pm.expect(body).to.have.lengthOf(1);",
      "  pm.expect(body[0].my_ref_code).to.match(/^[a-z0-9]{6}$/);",
      "});",
      'pm.environment.set("ref_code", body[0].my_ref_code);',
    ],
    "{{inviter_token}}",
  ],
  [
    "4. signup: you ask for a code",
    "POST",
    "/api/v1/auth/signup/",
    { phone: "{{phone}}" },
    [],
    [
      json,
      'pm.test("200 with the phone in E.164 and the code", () => {',
      "  pm.response.to.have.status(200);",
      '  pm.expect(body.phone).to.eql(pm.environment.get("phone"));',
      "  pm.expect(body.confirmation_code).to.match(/^\\d{4}$/);",
      "});",
      'pm.environment.set("confirmation_code", body.confirmation_code);',
    ],
  ],
  [
    "5. token: you log in",
    "POST",
    "/api/v1/auth/token/",
    { phone: "{{phone}}", confirmation_code: "{{confirmation_code}}" },
    [],
    [
      json,
      'pm.test("200 with a token pair", () => {',
      "  pm.response.to.have.status(200);",
      "  pm.expect(body.token).to.be.a('string');",
      "  pm.expect(body.refresh).to.be.a('string');",
      "});",
      'pm.environment.set("token", body.token);',
      'pm.environment.set("refresh", body.refresh);',
    ],
  ],
  [
    "6. my_profile",
    "GET",
    "/api/v1/my_profile/",
    null,
    [],
    [
      json,
      'pm.test("200: your phone, your code, no inviter yet", () => {',
      "  pm.response.to.have.status(200);",
      '  pm.expect(body[0].phone).to.eql(pm.environment.get("phone"));',
      "  pm.expect(body[0].my_inviter).to.eql(null);",
      "  pm.expect(body[0].my_refs).to.eql([]);",
      "});",
    ],
  ],
  [
    "7. inviter: you enter the inviter's code",
    "PATCH",
    "/api/v1/my_profile/",
    { my_inviter: "{{ref_code}}" },
    [],
    [
      json,
      'pm.test("200: my_inviter is the inviter\'s phone", () => {',
      "  pm.response.to.have.status(200);",
      '  pm.expect(body[0].my_inviter).to.eql(pm.environment.get("inviter_phone"));',
      "});",
    ],
  ],
  [
    "8. refresh: a new token pair",
    "POST",
    "/api/v1/auth/token/refresh/",
    { refresh: "{{refresh}}" },
    [],
    [
      json,
      'pm.test("200 with a new pair (the old refresh token is spent)", () => {',
      "  pm.response.to.have.status(200);",
      '  pm.expect(body.refresh).to.not.eql(pm.environment.get("refresh"));',
      "});",
      'pm.environment.set("token", body.token);',
      'pm.environment.set("refresh", body.refresh);',
    ],
  ],
  [
    "9. logout with the new refresh token",
    "POST",
    "/api/v1/auth/logout/",
    { refresh: "{{refresh}}" },
    [],
    ['pm.test("205: logged out", () => pm.response.to.have.status(205));'],
  ],
  [
    "10. the logged-out refresh token no longer works",
    "POST",
    "/api/v1/auth/token/refresh/",
    { refresh: "{{refresh}}" },
    [],
    ['pm.test("401", () => pm.response.to.have.status(401));'],
  ],
];

function withoutIds(value) {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (value && typeof value === "object") {
    const out = {};
    for (const [key, item] of Object.entries(value)) {
      if (key !== "id" && key !== "_postman_id") out[key] = withoutIds(item);
    }
    return out;
  }
  return value;
}

function requests(items, found = []) {
  for (const item of items) {
    if (item.item) requests(item.item, found);
    else found.push(item);
  }
  return found;
}

function pathOf(request) {
  return "/" + request.url.path.join("/");
}

function script(type, lines) {
  return { listen: type, script: { type: "text/javascript", exec: lines } };
}

const spec = fs.readFileSync(schemaFile, "utf8");
const options = { folderStrategy: "Paths" };
converter.convert({ type: "string", data: spec }, options, (error, result) => {
  if (error || !result.result) {
    console.error("openapi-to-postmanv2:", error || result.reason);
    process.exit(1);
  }
  const generated = withoutIds(result.output[0].data);
  const all = requests(generated.item);
  // The example answers are faked from the schema with the clock's time in them; schema.yaml is
  // where the answers are described, so the requests go without them.
  for (const item of all) delete item.response;
  // Every bearer request takes {{token}} (the walkthrough's current access token).
  for (const item of all) {
    if (item.request.auth && item.request.auth.type === "bearer") {
      item.request.auth.bearer = [{ key: "token", value: "{{token}}", type: "string" }];
    }
  }
  const walkthrough = steps.map(([name, method, route, body, pre, test, token]) => {
    const source = all.find((item) => item.request.method === method && pathOf(item.request) === route);
    if (!source) throw new Error(`schema.yaml has no ${method} ${route}`);
    const item = JSON.parse(JSON.stringify(source));
    item.name = name;
    item.request.name = name;
    delete item.response;
    if (body) item.request.body.raw = JSON.stringify(body, null, 2);
    if (token) item.request.auth.bearer[0].value = token;
    item.event = [];
    if (pre.length) item.event.push(script("prerequest", pre));
    item.event.push(script("test", test));
    return item;
  });
  const collection = {
    info: {
      name: generated.info.name,
      description:
        "Made by `make postman` from schema.yaml. Walkthrough: the documented flow in order, with tests " +
        "(run it against `make run`: fake delivery returns the code). All operations: every request of the schema.",
      schema: generated.info.schema,
    },
    item: [
      { name: "Walkthrough", item: walkthrough },
      { name: "All operations", item: generated.item },
    ],
    variable: [],
  };
  const environment = {
    name: "referral-service (make run)",
    values: [
      { key: "baseUrl", value: "http://127.0.0.1:8000", type: "default", enabled: true },
      ...["phone", "inviter_phone", "confirmation_code", "inviter_code", "inviter_token", "ref_code", "token"]
        .concat(["refresh"])
        .map((key) => ({ key, value: "", type: key.includes("token") || key === "refresh" ? "secret" : "default", enabled: true })),
    ],
  };
  fs.writeFileSync(path.join(outDir, "collection.json"), JSON.stringify(collection, null, 2) + "\n");
  fs.writeFileSync(path.join(outDir, "environment.json"), JSON.stringify(environment, null, 2) + "\n");
  console.log(`wrote ${path.join(outDir, "collection.json")} (${walkthrough.length} walkthrough steps, ${all.length} operations)`);
});
