package codec

// The generated files (*_gen.go) come from the spec copy next to the
// generator; TestGeneratedCodeIsUpToDate fails when running this directive
// would change them.
//
//go:generate go run ../../../codegen/amqp -spec ../../../codegen/amqp/amqp-rabbitmq-0.9.1.json -out .
