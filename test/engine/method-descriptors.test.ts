import { test } from 'node:test';
import assert from 'node:assert/strict';
import schema from '../../schemas/prune-config.schema.json';
import { METHOD_INFO, METHOD_NAMES, methodLabel } from '../../src/protocol/methods.js';

type SchemaNode = { enum?: unknown[]; markdownEnumDescriptions?: unknown[]; properties?: Record<string, SchemaNode>; default?: unknown };
const properties = (schema as unknown as { properties: Record<string, SchemaNode> }).properties;

test("the method list is the schema's method enum, in order, each with a section of options", () => {
  assert.deepEqual(properties.method.enum, [...METHOD_NAMES]);
  assert.equal(properties.method.markdownEnumDescriptions?.length, METHOD_NAMES.length, 'one editor description per method');
  for (const name of METHOD_NAMES) assert.ok(properties[name]?.properties, `schema section "${name}"`);
  assert.deepEqual(METHOD_INFO.map((m) => m.id), [...METHOD_NAMES]);
  for (const info of METHOD_INFO) assert.ok(info.label && info.description.length > 10, info.id);
  assert.equal(methodLabel('ispasp'), 'i-SpaSP');
  assert.equal(methodLabel('dense'), 'dense', 'an id outside the list reads as itself');
});
