// Package subscriptions owns webhook state: it rebuilds every webhook by
// reading the compacted hookline.subscriptions topic from its start, keeps
// reading it so that changes take effect without a restart, and publishes
// changes as events on that topic.
//
// The topic is the only source of truth: the registry must never change its
// state except by applying a message read from the topic, so that every
// process that reads it agrees.
package subscriptions
