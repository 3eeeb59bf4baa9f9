"""Data connection and sharing (kết nối, chia sẻ dữ liệu): partner organisations, their API
clients, the OAuth 2 authorization server and the population verification API."""
