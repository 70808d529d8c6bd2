// Asio's and Beast's non-template code, compiled once here rather than inline in every file that
// uses them (BOOST_ASIO_SEPARATE_COMPILATION and BOOST_BEAST_SEPARATE_COMPILATION are set for every
// user of estlab_core). server.cpp alone compiled 18% faster.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
